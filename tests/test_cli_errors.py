"""Clear errors, each with what to do: unknown names, missing models, GGUF without template."""

from __future__ import annotations

from pathlib import Path

from conftest import tiny_config, write_config


def test_unknown_engine_lists_the_engines(cli, tiny_model: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model))
    result = cli("generate", str(config), "--set", "engine.name=nope", "--out", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "unknown engine 'nope'; available: llamacpp, openai, transformers, vllm" in result.stderr
    assert "Hint:" in result.stderr


def test_unknown_recipe_in_init(cli, tmp_path: Path) -> None:
    result = cli("init", str(tmp_path / "x.toml"), "--recipe", "nope")
    assert result.exit_code == 1 and "available: instruct-synth, lamini, magpie," in result.stderr


def test_missing_model_file(cli, tiny_model: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model))
    result = cli(
        "generate",
        str(config),
        "--set",
        f"engine.model={tmp_path / 'gone'}",
        "--out",
        str(tmp_path / "b"),
    )
    assert result.exit_code == 1
    assert f"model not found: {tmp_path / 'gone'}" in result.stderr
    assert "embedded:smollm2" in result.stderr  # the hint says what works


def test_gguf_without_chat_template(cli, embedded_model: Path, tmp_path: Path) -> None:
    from gguf import GGUFWriter

    gguf_path = tmp_path / "no-template.gguf"
    writer = GGUFWriter(str(gguf_path), "llama")
    writer.add_name("no-template")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    config = tmp_path / "c.toml"
    cli("init", str(config))
    result = cli(
        "generate", str(config), "--set", f"engine.model={gguf_path}", "--out", str(tmp_path / "b")
    )
    assert result.exit_code == 1
    assert "has no chat template" in result.stderr
    assert "engine.template=chatml" in result.stderr
