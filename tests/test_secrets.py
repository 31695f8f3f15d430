"""A planted token in the environment and in the config reaches no output file or log."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import tiny_config, write_config

ENV_TOKEN = "hf_PLANTEDenvTOKEN0123456789abcdef"
CONFIG_TOKEN = "hf_PLANTEDconfigTOKEN9876543210fedcba"


def test_tokens_appear_in_no_output(cli, tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    monkeypatch.setenv("ARGILLA_API_KEY", ENV_TOKEN)
    config = write_config(
        tmp_path / "c.toml",
        tiny_config(tiny_model, num_rows=2, batch_size=2).replace(
            "[engine]\n", f'[engine]\ntoken = "{CONFIG_TOKEN}"\n'
        ),
    )
    out = tmp_path / "build"
    result = cli("generate", str(config), "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    for text in (result.stdout, result.stderr):
        assert ENV_TOKEN not in text and CONFIG_TOKEN not in text

    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files)
    # distilabel's own cache (a yaml of every step) is not written: we never resume from it
    assert not any(p.name == "pipeline.yaml" for p in files)
    for path in files:
        blob = path.read_bytes()
        assert ENV_TOKEN.encode() not in blob, path
        assert CONFIG_TOKEN.encode() not in blob, path


def test_tokens_appear_in_no_pipeline_dump(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    """What distilabel serializes of every step, LLM fields included (its log, a Ray job)."""
    from magpie_hub.config import load_config
    from magpie_hub.generate.run import build_pipeline, plan_build
    from magpie_hub.plugins import get_registry

    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    config = write_config(
        tmp_path / "c.toml",
        tiny_config(tiny_model, num_rows=2, batch_size=2).replace(
            "[engine]\n", f'[engine]\ntoken = "{CONFIG_TOKEN}"\n'
        ),
    )
    plan = plan_build(load_config(config, get_registry()), tmp_path / "build")
    assert plan.config.engine.token is not None  # the token is there to leak
    dump = json.dumps(build_pipeline(plan, plan.todo).dump(), default=str)
    assert "llm" in dump
    assert ENV_TOKEN not in dump and CONFIG_TOKEN not in dump
