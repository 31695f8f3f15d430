"""`PRELOADS`: what engines load in the driver for the step processes it forks."""

from __future__ import annotations

import os
import threading

from magpie_hub.engines.base import Preloads


def test_an_item_is_taken_once_and_only_when_every_load_has_finished() -> None:
    preloads, gate = Preloads(), threading.Event()
    preloads.start("m", lambda: gate.wait(10) and "model")
    preloads.start("m", lambda: "a second load")  # one load per key
    assert preloads.take("m") is None  # still loading: a process forked now loads its own
    gate.set()
    preloads.wait()
    assert preloads.take("m") == "model"
    assert preloads.take("m") is None  # once per process


def test_a_failed_load_leaves_nothing_to_take() -> None:
    preloads = Preloads()
    preloads.start("m", lambda: 1 / 0)
    preloads.wait()
    assert preloads.take("m") is None and not preloads.items


def test_a_forked_process_takes_its_copy_and_the_driver_keeps_its_own() -> None:
    preloads = Preloads()
    preloads.start("m", lambda: ["model"])
    preloads.wait()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the step process
        os.write(write, repr(preloads.take("m")).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"['model']"
    assert preloads.take("m") == ["model"]
    preloads.clear()
    assert not preloads.items and not preloads.threads
