"""A disk that fills up mid-build: one message, and nothing committed is lost."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import tiny_config, write_config


def _tmpfs(mount: Path, options: str) -> Iterator[Path]:
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 192 KiB tmpfs: room to start a build, not to finish it."""
    yield from _tmpfs(tmp_path / "small", "size=192k")


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _tmpfs(tmp_path / "ro", "ro,size=64k")


def test_a_read_only_disk_gives_one_message(cli, read_only_disk: Path) -> None:  # type: ignore[no-untyped-def]
    rows = '{"instruction": "Hi?", "response": "Hello."}\n'
    source = read_only_disk.parent / "rows.jsonl"
    source.write_text(rows)
    result = cli("import", str(source), "--out", str(read_only_disk / "build"))
    assert result.exit_code == 1, result.stderr
    assert "cannot write here (Read-only file system)" in result.stderr
    assert "Hint:" in result.stderr and "Traceback" not in result.stderr


def _committed(build: Path) -> dict[str, dict]:
    rows = {}
    for marker in sorted((build / ".magpie" / "chunks").glob("chunk-*.json")):
        for row in pq.read_table(marker.with_suffix(".parquet")).to_pylist():
            rows[row["uuid"]] = row
    return rows


@pytest.mark.slow
def test_a_full_disk_gives_one_message_and_the_rerun_keeps_every_committed_row(
    tiny_model: Path, small_disk: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=60, batch_size=2))
    out = small_disk / "build"
    cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config), "-q", "--out"]
    full = subprocess.run([*cmd, str(out)], capture_output=True, text=True, timeout=600)
    assert full.returncode == 1, full.stderr
    last = full.stderr.strip().splitlines()[-3:]
    assert last[0].startswith("Error:") and "no space left on the device" in last[0], last
    assert last[1].startswith("Hint:") and "re-run the same command" in last[1], last
    assert "Exception in thread" not in full.stderr and "Logging error" not in full.stderr
    before = _committed(out)
    assert before, "the disk filled before any chunk was committed: the test proves nothing"

    moved = tmp_path / "moved"  # the user frees space: here, the build moves to a big disk
    shutil.copytree(out, moved)
    rerun = subprocess.run([*cmd, str(moved), "--json"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["resumed"] and summary["generated"] + summary["dropped"] == 60
    rows = [
        r for f in sorted((moved / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]
    assert len(rows) == len({r["uuid"] for r in rows}) == summary["generated"]
    by_uuid = {r["uuid"]: r for r in rows}
    assert all(by_uuid[u] == row for u, row in before.items())  # committed rows kept as they were
