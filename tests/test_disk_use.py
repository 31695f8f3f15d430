"""distilabel's cache does not hold a second copy of a build's rows."""

from __future__ import annotations

from pathlib import Path

from conftest import tiny_config, write_config


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_no_copy_of_the_batches_in_distilabels_cache(cli, tiny_model: Path, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=12, batch_size=2))
    out = tmp_path / "build"
    result = cli("generate", str(config), "--out", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    cache = out / ".magpie" / "distilabel"
    assert not list(cache.rglob("steps_data/**/batch_*.json"))
    assert size(cache) < size(out / "data") + size(out / ".magpie" / "chunks")
