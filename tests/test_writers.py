"""A build folder has one writer, and a killed writer leaves no worker behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_config, write_config
from curate_helpers import make_build, tree_digest

from magpie_hub.build import BuildFolder
from magpie_hub.errors import BuildLockedError

HOLD = """
import sys, time
from pathlib import Path
from magpie_hub.build import BuildFolder
with BuildFolder(Path(sys.argv[1])).writer():
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(root: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
    return proc


def test_the_lock_is_exclusive_reentrant_and_writes_nothing(tmp_path: Path) -> None:
    build = make_build(tmp_path / "b", ["How do I bake bread?"])
    before = tree_digest(build), sorted(p.name for p in build.rglob("*"))
    folder = BuildFolder(build)
    with folder.writer(), BuildFolder(build).writer():  # re-entrant within a process
        assert (tree_digest(build), sorted(p.name for p in build.rglob("*"))) == before
    holder = _holder(build)
    try:
        with pytest.raises(BuildLockedError) as caught, folder.writer():
            pass
        assert caught.value.pid == holder.pid
        assert f"PID {holder.pid}" in str(caught.value) and caught.value.hint
    finally:
        holder.kill()
        holder.wait()
    with folder.writer():  # the kernel dropped the lock with the holder
        pass
    assert (tree_digest(build), sorted(p.name for p in build.rglob("*"))) == before


def test_a_folder_created_for_the_lock_is_removed_when_nothing_was_written(tmp_path: Path) -> None:
    with BuildFolder(tmp_path / "new").writer():
        assert (tmp_path / "new").is_dir()
    assert not (tmp_path / "new").exists()


def test_curate_and_import_are_refused_while_another_process_writes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    build = make_build(tmp_path / "b", ["How do I bake bread?", "Name three rivers."])
    config = write_config(tmp_path / "c.toml", '[curate]\ntaggers = ["language"]\n')
    source = tmp_path / "rows.jsonl"
    source.write_text(json.dumps({"instruction": "Hi?", "response": "Hello."}) + "\n")
    before = tree_digest(build)
    holder = _holder(build)
    try:
        result = cli("curate", str(config), "--out", str(build))
        assert result.exit_code == 1, result.stderr
        assert f"PID {holder.pid}" in result.stderr and "Hint:" in result.stderr
        assert "Traceback" not in result.stderr
        imported = tmp_path / "imported"
        imported.mkdir()
        other = _holder(imported)
        try:
            result = cli("import", str(source), "--out", str(imported))
            assert result.exit_code == 1 and f"PID {other.pid}" in result.stderr
            assert list(imported.iterdir()) == []
        finally:
            other.kill()
            other.wait()
    finally:
        holder.kill()
        holder.wait()
    assert tree_digest(build) == before


@pytest.mark.slow
def test_a_second_generate_on_the_same_folder_is_refused_naming_the_first(
    tiny_model: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=12, batch_size=2))
    out = tmp_path / "build"
    cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config), "--out", str(out)]
    first = subprocess.Popen([*cmd, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((out / ".magpie" / "chunks").glob("*.json")):
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        time.sleep(0.1)
    # Pause the first run so it cannot finish (and release the lock) while the second starts.
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = subprocess.run([*cmd, "-q"], capture_output=True, text=True, timeout=120)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 1, second.stderr
    assert f"PID {first.pid}" in second.stderr and "Hint:" in second.stderr
    assert "Traceback" not in second.stderr
    stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    summary = json.loads(stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["generated"] == summary["generated"]
    assert summary["generated"] + summary["dropped"] == 12


def _live_members(group: int) -> list[int]:
    """PIDs (not zombies) whose process group is `group`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_kill_9_of_the_cli_alone_leaves_no_worker_behind(tiny_model: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=40, batch_size=2))
    out = tmp_path / "build"
    cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config), "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((out / ".magpie" / "chunks").glob("*.json")):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    workers = [p for p in _live_members(proc.pid) if p != proc.pid]
    assert workers, "distilabel started no worker process: nothing to check"
    os.kill(proc.pid, signal.SIGKILL)  # the CLI only, as an OOM killer or `kill -9 PID` does
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _live_members(proc.pid):
        time.sleep(0.2)
    left = _live_members(proc.pid)
    for pid in left:  # do not leak them into the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes outlived the CLI: {left}"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
