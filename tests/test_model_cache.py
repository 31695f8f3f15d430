"""The per-file cache of model hashes and GGUF metadata (engines/file_cache.py)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

import pytest

from magpie_hub.engines import base, models
from magpie_hub.engines.base import file_sha256
from magpie_hub.engines.file_cache import cached_file_result, model_cache_dir
from magpie_hub.engines.models import inspect_gguf, read_gguf_metadata


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAGPIE_HUB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "model-files"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the real hashing and GGUF parsing ran."""
    counts = {"sha256": 0, "gguf": 0}
    hash_files, parse = base._hash_files, models.parse_gguf_metadata

    def counted_hash(path: Path) -> str:
        counts["sha256"] += 1
        return hash_files(path)

    def counted_parse(path: Path) -> dict:
        counts["gguf"] += 1
        return parse(path)

    monkeypatch.setattr(base, "_hash_files", counted_hash)
    monkeypatch.setattr(models, "parse_gguf_metadata", counted_parse)
    return counts


def write_gguf(path: Path, name: str) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_string("general.organization", "org")
    writer.add_string("general.basename", name)
    writer.add_array("general.languages", ["en", "fr"])
    writer.add_token_list(["<s>", "</s>", "hi"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_chat_template("{{ messages }}")
    writer.add_tensor("w", np.zeros((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite(path: Path, data: bytes) -> None:
    """New content and a later mtime (a coarse clock could otherwise keep the old one)."""
    mtime = path.stat().st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))


def test_a_second_call_reads_the_cache(tmp_path: Path, calls: dict[str, int]) -> None:
    path = write_gguf(tmp_path / "m.gguf", "tiny")
    first = inspect_gguf(path, None, None)
    second = inspect_gguf(path, None, None)
    assert calls == {"sha256": 1, "gguf": 1}
    assert first.sha256 == second.sha256 == sha(path)
    assert first.model_id == second.model_id == "org/tiny"
    assert first.details == second.details
    assert second.chat_template is not None and second.chat_template.bos_token == "<s>"
    assert read_gguf_metadata(path) == models.parse_gguf_metadata(path)
    assert calls["gguf"] == 2  # the direct parse above; read_gguf_metadata was cached


def test_changed_content_is_recomputed(tmp_path: Path, calls: dict[str, int]) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"one")
    assert file_sha256(path) == sha(path)
    rewrite(path, b"two")  # the same size
    assert file_sha256(path) == sha(path) == hashlib.sha256(b"two").hexdigest()
    assert calls["sha256"] == 2

    gguf_path = write_gguf(tmp_path / "m.gguf", "before")
    assert read_gguf_metadata(gguf_path)["general.name"] == "before"
    data = write_gguf(tmp_path / "other.gguf", "after_").read_bytes()
    rewrite(gguf_path, data)
    assert read_gguf_metadata(gguf_path)["general.name"] == "after_"
    assert calls["gguf"] == 2


def test_a_rewrite_that_keeps_the_mtime_is_recomputed(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"one")
    assert file_sha256(path) == sha(path)
    before = path.stat()
    for _ in range(300):  # until the clock that stamps ctime has moved on
        path.write_bytes(b"two")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if path.stat().st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.01)
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert file_sha256(path) == hashlib.sha256(b"two").hexdigest()


def test_a_folder_is_keyed_by_each_of_its_files(tmp_path: Path, calls: dict[str, int]) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    digest = file_sha256(folder)
    assert file_sha256(folder) == digest and calls["sha256"] == 1
    rewrite(folder / "config.json", b"{1}")
    assert file_sha256(folder) != digest and calls["sha256"] == 2
    (folder / "weights.bin").write_bytes(b"w")
    assert file_sha256(folder) == base._hash_files(folder)
    assert calls["sha256"] == 4  # the new file was noticed (and one direct call)


def test_a_corrupt_entry_is_ignored_and_overwritten(
    tmp_path: Path, calls: dict[str, int], cache_dir: Path
) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    file_sha256(path)
    (entry,) = cache_dir.iterdir()
    for junk in ("{not json", "[1, 2]", '{"key": 1}', "\xff"):
        entry.write_text(junk, encoding="latin-1")
        assert file_sha256(path) == sha(path)
        assert json.loads(entry.read_text())["value"] == sha(path)
    assert calls["sha256"] == 5
    assert [p.name for p in cache_dir.iterdir()] == [entry.name]  # no temp files left


def test_an_unwritable_cache_still_gives_results(
    tmp_path: Path, calls: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MAGPIE_HUB_CACHE_DIR", str(blocker / "cache"))  # mkdir fails, even as root
    path = write_gguf(tmp_path / "m.gguf", "tiny")
    for _ in range(2):
        info = inspect_gguf(path, None, None)
        assert info.sha256 == sha(path) and info.model_id == "org/tiny"
    assert calls == {"sha256": 2, "gguf": 2}


def test_results_a_json_round_trip_changes_are_not_kept(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"x")
    seen: list[object] = []
    for value in [(1, 2), {"a": math.nan}, {1: "int key"}, {"a": object()}]:

        def compute(value: object = value) -> object:
            seen.append(value)
            return value

        assert cached_file_result(path, "odd", compute) is value
        assert cached_file_result(path, "odd", compute) is value
        assert seen[-2:] == [value, value]
    assert not cache_dir.exists()


def test_a_file_changed_while_computing_is_not_kept(tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"one")

    def compute() -> str:
        rewrite(path, b"two")
        return "stale"

    assert cached_file_result(path, "k", compute) == "stale"
    assert not cache_dir.exists()


def test_the_cache_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert model_cache_dir() == tmp_path / "cache" / "model-files"
    monkeypatch.delenv("MAGPIE_HUB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_cache_dir() == tmp_path / "xdg" / "magpie-hub" / "model-files"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert model_cache_dir() == tmp_path / "home" / ".cache" / "magpie-hub" / "model-files"
