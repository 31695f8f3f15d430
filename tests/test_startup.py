"""Start-up work that is skipped: argilla and distilabel's package `__init__`s until they
are used, distilabel's own cache files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import tiny_config, write_config

UNUSED_AT_START = ("datasets", "pandas", "scipy", "requests", "httpx", "rich.traceback")
"""Modules a local build on llama.cpp has not loaded by its first request (0.08-0.9 s each:
`datasets` with pandas and the Hub client, scipy through networkx, requests and httpx
for HTTP, rich's traceback hook); stand-ins do not count."""
EMBEDDED_CONFIG = """
recipe = "magpie"
num_rows = 4
batch_size = 2
[engine]
model = "embedded:smollm2"
[instruction]
max_new_tokens = 64
[response]
max_new_tokens = 16
"""


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


def test_a_build_runs_no_distilabel_package_init() -> None:
    seen = _python(
        "import json, sys\n"
        "import magpie_hub.cli.main, distilabel.pipeline.local\n"
        "from magpie_hub.plugins import get_registry\n"
        "get_registry()\n"
        "print(json.dumps({'steps': type(sys.modules['distilabel.steps']).__name__, "
        "'clustering': 'distilabel.steps.clustering.text_clustering' in sys.modules, "
        "'tasks': 'distilabel.steps.tasks.ultrafeedback' in sys.modules, "
        "'templates': 'distilabel.pipeline.templates' in sys.modules, "
        "'distiset': type(sys.modules['distilabel.distiset']).__name__}))"
    )
    assert seen == {
        "steps": "_LazyPackage",
        "clustering": False,
        "tasks": False,
        "templates": False,
        "distiset": "_StandIn",
    }


def test_reading_a_name_from_a_deferred_package_runs_its_init() -> None:
    seen = _python(
        "import json, sys, magpie_hub\n"
        "import distilabel.steps.base as base\n"
        "from distilabel.steps import KeepColumns, Step\n"
        "import distilabel.steps as steps\n"
        "from distilabel.pipeline import Pipeline\n"
        "from distilabel.distiset import Distiset, create_distiset\n"
        "print(json.dumps({'same': Step is base.Step, 'keep': KeepColumns.__name__, "
        "'listed': 'LoadDataFromHub' in dir(steps), 'missing': hasattr(steps, 'Nope'), "
        "'pipeline': Pipeline.__module__, 'distiset': Distiset.__name__, "
        "'create': create_distiset.__module__, "
        "'real': type(sys.modules['distilabel.distiset']).__name__}))"
    )
    assert seen == {
        "same": True,
        "keep": "KeepColumns",
        "listed": True,
        "missing": False,
        "pipeline": "distilabel.pipeline.local",
        "distiset": "Distiset",
        "create": "distilabel.distiset",
        "real": "module",
    }


def test_a_function_taken_from_a_stand_in_imports_the_module_when_called() -> None:
    seen = _python(
        "import json, sys, magpie_hub\n"
        "from distilabel.steps.generators.utils import make_generator_step\n"
        "before = type(sys.modules['distilabel.steps.generators.utils']).__name__\n"
        "step = make_generator_step([{'a': 1}], batch_size=1)\n"
        "print(json.dumps({'before': before, 'step': type(step).__name__, "
        "'after': type(sys.modules['distilabel.steps.generators.utils']).__name__}))"
    )
    assert seen == {"before": "_StandIn", "step": "LoadDataFromDicts", "after": "module"}


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


def test_the_first_request_is_sent_before_unused_modules_are_imported(
    embedded_model: Path, tmp_path: Path
) -> None:
    """A build on the embedded model sends its first prompts without `UNUSED_AT_START`;
    `datasets` is imported for the shards at the end."""
    config = write_config(tmp_path / "c.toml", EMBEDDED_CONFIG)
    seen = tmp_path / "seen.jsonl"
    _python(
        "import json, os, sys\n"
        "from magpie_hub.engines.base import RawTextLLM\n"
        "from magpie_hub.cli.main import main\n"
        f"UNUSED = {UNUSED_AT_START!r}\n"
        "original = RawTextLLM.generate\n"
        "def generate(self, *args, **kwargs):\n"
        f"    with open({str(seen)!r}, 'a') as fh:\n"
        "        seen = [m for m in UNUSED if type(sys.modules.get(m)).__name__ == 'module']\n"
        "        fh.write(json.dumps(seen) + '\\n')\n"
        "    return original(self, *args, **kwargs)\n"
        "generate.__signature__ = __import__('inspect').signature(original)\n"
        "RawTextLLM.generate = generate\n"
        "try:\n"
        f"    main(['generate', {str(config)!r}, '--out', {str(tmp_path / 'b')!r}, '-q'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print(json.dumps({'datasets': 'datasets' in sys.modules}))"
    )
    requests = [json.loads(line) for line in seen.read_text().splitlines()]
    assert requests and requests == [[]] * len(requests)
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["counts"]["generated"] >= 1


@pytest.mark.parametrize(
    "edges",
    [
        [("a", "b"), ("b", "c"), ("c", "d")],  # a recipe's chain
        [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],  # diamond
        [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("x", "d")],  # uneven, two roots
    ],
)
def test_trophic_levels_are_networkx_s(edges: list[tuple[str, str]]) -> None:
    import networkx as nx

    from magpie_hub.running import trophic_levels

    graph = nx.DiGraph(edges)
    assert trophic_levels(graph) == pytest.approx(nx.trophic_levels(graph))


def test_an_uncaught_error_prints_no_local_variables() -> None:
    """distilabel's `__init__` installed rich's traceback hook with `show_locals=True`: an
    uncaught exception (or any error with MAGPIE_HUB_DEBUG=1) printed every frame's
    variables, a token among them. The hook is not installed; rich.traceback still works."""
    code = (
        "import sys, magpie_hub.cli.main, distilabel.pipeline.local\n"
        "assert sys.excepthook is sys.__excepthook__, sys.excepthook\n"
        "assert 'rich.traceback' not in sys.modules\n"
        "import rich.traceback\n"
        "assert rich.traceback.Traceback.__name__ == 'Traceback'\n"
        "def push(token):\n"
        "    raise RuntimeError('the Hub said no')\n"
        "push('hf_' + 'NOT_A_REAL_TOKEN_' * 2)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "RuntimeError: the Hub said no" in out.stderr
    assert "NOT_A_REAL_TOKEN" not in out.stderr, out.stderr


def _build_observed(config: Path, out: Path, log: Path, *, preload: bool) -> list[dict[str, Any]]:
    """Run `generate` in a fresh process; per engine call: its process, whether its model
    was preloaded in the driver, its threads. The driver keeps no preload after the run."""
    after = _python(
        "import json, os, sys\n"
        "from magpie_hub.engines.base import PRELOADS, RawTextLLM\n"
        "from magpie_hub_plugins.engine_llamacpp import LlamaCppLLM\n"
        "from magpie_hub.cli.main import main\n"
        f"if not {preload!r}:\n"
        "    LlamaCppLLM.preload = lambda self: None\n"
        "taken = PRELOADS.take\n"
        "def take(key):\n"
        "    item = taken(key)\n"
        "    os.environ['TOOK'] = str(item is not None)\n"
        "    return item\n"
        "PRELOADS.take = take\n"
        "original = RawTextLLM.generate\n"
        "def generate(self, *args, **kwargs):\n"
        f"    with open({str(log)!r}, 'a') as fh:\n"
        "        seen = {'pid': os.getpid(), 'took': os.environ['TOOK'] == 'True',\n"
        "                'threads': self._model.n_threads, 'wanted': self._n_threads()}\n"
        "        fh.write(json.dumps(seen) + '\\n')\n"
        "    return original(self, *args, **kwargs)\n"
        "generate.__signature__ = __import__('inspect').signature(original)\n"
        "RawTextLLM.generate = generate\n"
        "try:\n"
        f"    main(['generate', {str(config)!r}, '--out', {str(out)!r}, '-q'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print(json.dumps({'driver_keeps': len(PRELOADS.items)}))"
    )
    assert after == {"driver_keeps": 0}
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_step_processes_take_the_model_the_driver_preloaded(
    embedded_model: Path, tmp_path: Path
) -> None:
    """llama.cpp models load once in the driver, in a thread while it sets up, and every
    forked step process takes it (on its own share of threads) instead of loading its own;
    the rows are the same as when each process loads the model."""
    config = write_config(tmp_path / "c.toml", EMBEDDED_CONFIG)
    calls = _build_observed(config, tmp_path / "pre", tmp_path / "pre.jsonl", preload=True)
    assert len({c["pid"] for c in calls}) >= 2  # instruction and response processes
    assert all(c["took"] and c["threads"] == c["wanted"] for c in calls), calls
    own = _build_observed(config, tmp_path / "own", tmp_path / "own.jsonl", preload=False)
    assert not any(c["took"] for c in own)
    rows = [pq.read_table(tmp_path / b / "data").to_pylist() for b in ("pre", "own")]
    assert rows[0] and rows[0] == rows[1]


def test_loading_the_plugins_leaves_distilabel_s_pipeline_for_the_build() -> None:
    """Recipes get their `Pipeline` from `BuildContext.pipeline`, so a build has planned
    and started loading its model before distilabel's pipeline module (networkx) loads."""
    seen = _python(
        "import json, sys, magpie_hub.cli.main\n"
        "from magpie_hub.plugins import get_registry\n"
        "recipes = sorted(get_registry().recipes)\n"
        "print(json.dumps({'recipes': len(recipes) >= 5, "
        "'pipeline': 'distilabel.pipeline.local' in sys.modules, "
        "'networkx': 'networkx' in sys.modules}))"
    )
    assert seen == {"recipes": True, "pipeline": False, "networkx": False}
