"""Start-up work that is skipped: argilla until it is used, distilabel's own cache files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import tiny_config, write_config


def _python(code: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_cli_import_leaves_argilla_unloaded_until_used() -> None:
    seen = _python(
        "import json, sys\n"
        "import magpie_hub.cli.main, distilabel.steps\n"
        "before = 'argilla.client' in sys.modules\n"
        "import argilla as rg\n"
        "client = rg.Argilla.__name__\n"
        "from argilla import Settings\n"
        "print(json.dumps({'before': before, 'client': client, 'real': "
        "type(sys.modules['argilla']).__name__, 'same': Settings is rg.Settings, "
        "'listed': 'Dataset' in dir(rg)}))"
    )
    assert seen == {
        "before": False,
        "client": "Argilla",
        "real": "module",
        "same": True,
        "listed": True,
    }


def test_a_submodule_import_loads_the_real_package() -> None:
    seen = _python(
        "import json, sys, magpie_hub\n"
        "import argilla.datasets as d\n"
        "print(json.dumps({'cls': d.Dataset.__name__, "
        "'real': type(sys.modules['argilla']).__name__}))"
    )
    assert seen == {"cls": "Dataset", "real": "module"}


def test_distilabel_cache_files_are_not_written(cli, tiny_model: Path, tmp_path: Path) -> None:
    from distilabel.pipeline import base, local

    before = (base.BasePipeline._cache, local.create_distiset)
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=4, batch_size=2))
    out = tmp_path / "build"
    result = cli("generate", str(config), "--out", str(out), "-q")
    assert result.exit_code == 0, result.stderr
    names = {p.name for p in out.rglob("*") if p.is_file()}
    assert not names & {"pipeline.yaml", "batch_manager.json", "stages.json"}
    assert not [p for p in out.rglob("steps_data") if any(p.iterdir())]
    assert any(p.suffix == ".parquet" for p in (out / ".magpie" / "distilabel").rglob("*"))
    assert json.loads((out / "manifest.json").read_text())["counts"]["generated"] >= 1
    assert (base.BasePipeline._cache, local.create_distiset) == before  # patches undone
