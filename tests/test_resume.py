"""Resume after a real `kill -9`, or a Ctrl-C, of a running `magpie-hub generate`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import tiny_config, write_config

NUM_ROWS = 40


def committed_rows(chunks: Path) -> list[dict]:
    rows = []
    for marker in sorted(chunks.glob("chunk-*.json")):
        rows += pq.read_table(marker.with_suffix(".parquet")).to_pylist()
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupt_then_rerun_keeps_finished_rows_without_duplicates(
    sig: signal.Signals, tiny_model: Path, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.toml", tiny_config(tiny_model, num_rows=NUM_ROWS, batch_size=2)
    )
    out = tmp_path / "build"
    cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config), "--out", str(out), "-q"]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    chunks = out / ".magpie" / "chunks"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(chunks.glob("chunk-*.json"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"generate ended before it could be killed: {proc.stderr.read()}"
    os.killpg(proc.pid, sig)  # the CLI and distilabel's workers, as a terminal does
    proc.wait(timeout=120)
    if sig == signal.SIGINT:  # a graceful stop: says what happened and how to go on
        assert proc.returncode == 3
        message = proc.stderr.read().decode()
        assert "Build incomplete" in message and "re-run the same command" in message
        status = json.loads((out / "manifest.json").read_text())["status"]
        assert status == "incomplete"

    before = committed_rows(chunks)
    settled = sum(
        len(m["written"]) + len(m["dropped"])
        for m in (json.loads(p.read_text()) for p in chunks.glob("chunk-*.json"))
    )
    assert 0 < settled < NUM_ROWS, "the kill did not land mid-run"
    assert (
        not (out / "data").exists()
        or json.loads((out / "manifest.json").read_text())["status"] != "complete"
    )

    done = subprocess.run([*cmd[:-1], "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["resumed"] is True and summary["pending"] == 0
    assert summary["generated"] + summary["dropped"] == NUM_ROWS

    final = [
        r for f in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]
    uuids = [r["uuid"] for r in final]
    assert len(uuids) == len(set(uuids)) == summary["generated"]
    by_uuid = {r["uuid"]: r for r in final}
    for row in before:  # every row finished before the kill is kept, unchanged
        assert by_uuid[row["uuid"]] == row


@pytest.mark.slow
def test_a_torn_distilabel_cache_file_does_not_break_the_next_run(
    tiny_model: Path, tmp_path: Path
) -> None:
    """distilabel reads `pipeline.yaml` back at the next start even with `use_cache=False`;
    builds made before we stopped writing it could hold one torn by a `kill -9` mid-write
    (seen in CI), which ended the re-run in a KeyError."""
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=4, batch_size=2))
    out = tmp_path / "build"
    cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config), "--out", str(out), "-q"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    executions = list((out / ".magpie" / "distilabel").glob("*/*/executions/*"))
    assert executions, "distilabel's cache folder moved: the scenario cannot be planted"
    for folder in executions:  # torn as a kill mid-write leaves it: valid YAML, keys missing
        (folder / "pipeline.yaml").write_text("distilabel:\n  version: 1.5.3\npipeline:\n")

    grown = subprocess.run([*cmd, "-n", "6"], capture_output=True, text=True, timeout=600)
    assert grown.returncode == 0, grown.stderr
    rows = [r for f in (out / "data").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert len(rows) == manifest["counts"]["generated"]
