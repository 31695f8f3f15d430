"""Run a distilabel pipeline the way every stage does: stdout kept for data, progress polled
from what the sink has committed, distilabel's own noise turned down.

distilabel handles Ctrl-C itself: it stops the steps gracefully and returns, as it does
when a step fails; the caller then sees rows still pending and says the run stopped early.

Resuming is ours (committed chunks), never distilabel's: its cache is cleared before each
run, and the files it keeps for its own resume (a copy of every batch, `pipeline.yaml` and
the batch manager rewritten after every batch, a `Distiset` read back at the end) are not
written at all.

distilabel forks its step workers (and a manager process) as non-daemon children; after a
`kill -9` of the CLI they would live on, each holding a model. Every process forked while
a pipeline runs watches its parent and exits when the parent is gone.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

ProgressCallback = Callable[[int, int], None]
"""Called with (units done so far, units to do)."""


def run_pipeline(
    pipeline: Any, done: Callable[[], int], total: int, on_progress: ProgressCallback | None
) -> None:
    """`pipeline.run()` with `done()` (committed units) polled into `on_progress`."""
    os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # for a `datasets`
    if "datasets" in sys.modules:  # imported later, and for one imported already
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    clear_distilabel_cache(pipeline)
    from magpie_hub.engines.base import PRELOADS

    PRELOADS.wait()  # engines' preloads (`execution.preloading`): none may load in a fork
    with (
        _Poll(done, total, on_progress),
        stdout_to_stderr(),
        die_with_parent(),
        _quick_polls(),
        _plain_trophic_levels(),
        _no_distilabel_cache(),
    ):
        try:
            with _disk_errors_raised():
                pipeline.run(use_cache=False)
        except RuntimeError as exc:
            if "Failed to load all the steps" not in str(exc):
                raise
            from magpie_hub.errors import EngineError

            log = pipeline._cache_location["log_file"]
            raise EngineError(
                "a pipeline step could not load its model (the file loads no weights, the "
                "engine ran out of memory, or the engine is broken)",
                hint=f"The first error is in the log, {log}; check engine.model and re-run.",
            ) from exc


class _QuickSleep:
    """distilabel's `time` with sleeps of at most `POLL_SECONDS`: its pipeline polls whether
    the steps have loaded every 2.5 s and whether they have stopped every 0.5 s, which
    added up to 3 s of a short run."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, POLL_SECONDS))


POLL_SECONDS = 0.05


@contextmanager
def _quick_polls() -> Iterator[None]:
    from distilabel.pipeline import base

    original = base.time
    base.time = _QuickSleep()
    try:
        yield
    finally:
        base.time = original


def trophic_levels(graph: Any) -> dict[str, float]:
    """networkx's trophic levels of a DAG (unit edge weights): a step without predecessors
    is at 1, any other at 1 + the mean level of its predecessors. networkx solves a linear
    system with scipy for it, and importing scipy.sparse cost 0.15 s of every start."""
    import networkx as nx

    levels: dict[str, float] = {}
    for node in nx.topological_sort(graph):
        before = [levels[p] for p in graph.predecessors(node)]
        levels[node] = 1 + sum(before) / len(before) if before else 1.0
    return levels


@contextmanager
def _plain_trophic_levels() -> Iterator[None]:
    """distilabel orders and validates the steps by trophic level, re-computed on every
    ask: `trophic_levels` in place of networkx's."""
    from distilabel.pipeline._dag import DAG

    original = DAG.__dict__["trophic_levels"]
    DAG.trophic_levels = property(lambda dag: trophic_levels(dag.G))
    try:
        yield
    finally:
        DAG.trophic_levels = original


@contextmanager
def _no_distilabel_cache() -> Iterator[None]:
    """Skip what distilabel writes for a later `use_cache=True` run, which we never make.

    The main process kept a JSON copy of every batch of every step (three times the disk of
    the rows), re-dumped the pipeline to `pipeline.yaml` and the batch manager after every
    batch, re-hashed every step for each cache path, and loaded the leaf outputs into a
    `Distiset` at the end; together about a third of a second of a short run, and a
    `kill -9` during the yaml rewrite broke the next start. The log file stays."""
    from distilabel.pipeline import base, local
    from distilabel.pipeline.batch_manager import _BatchManager

    locations: dict[int, tuple[Any, Any]] = {}
    cache_location = base.BasePipeline._cache_location

    def once(pipeline: Any) -> Any:  # the steps are fixed once `run()` asks for it
        if id(pipeline) not in locations:
            locations[id(pipeline)] = (pipeline, cache_location.fget(pipeline))
        return locations[id(pipeline)][1]

    patches = [
        (_BatchManager, "write_batch_data", lambda self, batch, steps_data_path: None),
        (base.BasePipeline, "_cache", lambda self: None),
        (base.BasePipeline, "_cache_location", property(once)),
        (local, "create_distiset", lambda *args, **kwargs: None),
    ]
    if ray_module := sys.modules.get("distilabel.pipeline.ray"):
        patches.append((ray_module, "create_distiset", lambda *args, **kwargs: None))
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


@contextmanager
def _disk_errors_raised() -> Iterator[None]:
    """A full or read-only disk kills distilabel's bookkeeping threads (their tracebacks
    would flood the terminal) and its log handler: keep the first such `OSError` quiet and
    raise it once the run returns, for the CLI to report as one message."""
    import logging

    from magpie_hub.errors import StorageError

    seen: list[OSError] = []
    default_hook, raise_logging = threading.excepthook, logging.raiseExceptions

    def hook(args: threading.ExceptHookArgs) -> None:
        exc = args.exc_value
        if isinstance(exc, OSError) and StorageError.from_os_error(exc) is not None:
            seen.append(exc)
        elif not seen:  # after a disk error, other threads die of it (EOFError, ...)
            default_hook(args)

    threading.excepthook, logging.raiseExceptions = hook, False
    try:
        yield
    finally:
        threading.excepthook, logging.raiseExceptions = default_hook, raise_logging
    if seen:
        raise seen[0]


WATCH_SECONDS = 0.5
_watching = threading.Event()


def _watch_parent() -> None:
    """In a forked child: exit as soon as the parent that forked it is gone."""
    if not _watching.is_set():
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="magpie-hub-parent-watch", daemon=True).start()


os.register_at_fork(after_in_child=_watch_parent)


@contextmanager
def die_with_parent() -> Iterator[None]:
    """Processes forked inside the block exit when their parent dies (`kill -9` too)."""
    _watching.set()
    try:
        yield
    finally:
        _watching.clear()


def clear_distilabel_cache(pipeline: Any) -> None:
    """Remove what an earlier run of this pipeline left in distilabel's cache folder."""
    shutil.rmtree(Path(pipeline._cache_dir) / pipeline.name, ignore_errors=True)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Keep stdout for data (`--json`): while the pipeline runs, distilabel's log handler
    (which writes to `sys.stdout`) and whatever engines print in distilabel's workers
    (which inherit file descriptor 1) go to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class _Poll:
    """Poll `done()` in a thread (the sink commits in another process) and report it."""

    def __init__(self, done: Callable[[], int], total: int, callback: ProgressCallback | None):
        self.done, self.total, self.callback = done, total, callback
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            if self.callback:
                try:
                    now = self.done()
                except (OSError, ValueError):
                    continue  # a marker being replaced right now
                self.callback(min(now, self.total), self.total)

    def __enter__(self) -> _Poll:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
