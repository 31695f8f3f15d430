"""`--target kept`: new rows are attempted until num_rows are kept, within max_attempts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

CONFIG = """recipe = "magpie"
num_rows = 12
batch_size = 4
{extra}
[engine]
name = "echo"
model = "drop-every-3"
"""


def _run(cli, tmp_path: Path, *args: str, extra: str = "") -> tuple[dict, list[dict], Path]:  # type: ignore[no-untyped-def]
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(extra=extra))
    out = tmp_path / "build"
    result = cli("generate", str(config), "--out", str(out), "--json", *args)
    assert result.exit_code == 0, result.stderr
    rows = [
        r for f in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]
    return json.loads(result.stdout), rows, out


def test_attempts_is_the_default_and_drops_are_not_replaced(cli, with_plugins, tmp_path) -> None:  # type: ignore[no-untyped-def]
    summary, rows, _ = _run(cli, tmp_path)
    assert summary["dropped"] > 0, "the echo engine dropped nothing: the test proves nothing"
    assert summary["attempted"] == 12
    assert summary["generated"] + summary["dropped"] == 12 == len(rows) + summary["dropped"]


def test_kept_tops_up_until_num_rows_are_kept(cli, with_plugins, tmp_path) -> None:  # type: ignore[no-untyped-def]
    summary, rows, out = _run(cli, tmp_path, "--target", "kept")
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert summary["generated"] == len(rows) == 12
    assert len({r["uuid"] for r in rows}) == 12
    assert counts["target"] == "kept" and counts["attempted"] > 12
    assert counts["extra_attempts"] == counts["attempted"] - 12
    assert counts["dropped"] == sum(counts["dropped_by_reason"].values()) > 0
    assert counts["attempted"] <= 24  # the default bound: twice num_rows
    assert manifest["status"] == "complete" and counts["pending"] == 0

    # the same build as an `attempts` build of that many rows, cut to the first 12 kept
    (tmp_path / "wide").mkdir()
    _, wide_rows, _ = _run(cli, tmp_path / "wide", "-n", str(counts["attempted"]))
    assert [r["uuid"] for r in rows] == [r["uuid"] for r in wide_rows][:12]


def test_max_attempts_bounds_the_top_up(cli, with_plugins, tmp_path) -> None:  # type: ignore[no-untyped-def]
    summary, rows, out = _run(cli, tmp_path, "--target", "kept", extra="max_attempts = 13")
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["attempted"] == 13 and counts["extra_attempts"] == 1
    assert summary["generated"] == len(rows) == 13 - counts["dropped"] < 12
    assert summary["status"] == "complete"


def test_max_attempts_below_num_rows_is_refused(cli, with_plugins, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(extra='target = "kept"\nmax_attempts = 5'))
    result = cli("generate", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "max_attempts (5) is below num_rows (12)" in result.stderr and "Hint:" in result.stderr
    assert not (tmp_path / "b").exists()
