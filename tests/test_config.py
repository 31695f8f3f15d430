"""Config loading: every error names the file, the dotted field, the bad value, what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from magpie_hub.config import load_config
from magpie_hub.config_files import parse_override
from magpie_hub.errors import ConfigError, ConfigValidationError, UnknownNameError
from magpie_hub.plugins import get_registry


def load(tmp_path: Path, text: str, **kw):  # type: ignore[no-untyped-def]
    path = tmp_path / "magpie-hub.toml"
    path.write_text(text)
    return load_config(path, get_registry(), **kw)


def test_out_of_range_value_names_file_field_value_and_limit(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as info:
        load(tmp_path, "[instruction]\ntemperature = 9\n")
    message = str(info.value)
    assert str(tmp_path / "magpie-hub.toml") in message
    assert "instruction.temperature" in message
    assert "got 9" in message and "less than or equal to 5" in message
    assert info.value.field == "instruction.temperature"


def test_unknown_field_lists_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as info:
        load(tmp_path, "[engine]\nmodle = 'x.gguf'\n")
    message = str(info.value)
    assert "engine.modle" in message
    assert "unknown field" in message
    assert "model" in message and "template" in message


def test_wrong_type_and_several_problems_are_all_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as info:
        load(tmp_path, "num_rows = 'many'\nbatch_size = 0\n")
    fields = [f for f, _ in info.value.problems]
    assert fields == ["num_rows", "batch_size"]
    assert "'many'" in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "num_rows = = 3\n")
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(tmp_path / "nope.toml", get_registry())
    assert "magpie-hub init" in (info.value.hint or "")


def test_unknown_recipe_lists_available(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError) as info:
        load(tmp_path, "recipe = 'nope'\n")
    assert "magpie" in str(info.value)


def test_overrides_and_num_rows(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "num_rows = 5\n",
        overrides=["engine.threads=3", "response.temperature=0.5", "system_prompt=Be brief."],
        num_rows=11,
    )
    assert cfg.num_rows == 11
    assert cfg.engine.threads == 3
    assert cfg.response.temperature == 0.5  # type: ignore[attr-defined]
    assert cfg.system_prompt == "Be brief."  # type: ignore[attr-defined]
    # a partial [response] keeps the response defaults (greedy), not the instruction ones
    assert cfg.response.max_new_tokens == 384  # type: ignore[attr-defined]


def test_override_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError, match=r"engine\.threads"):
        load(tmp_path, "", overrides=["engine.threads=0"])
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        parse_override("no-equals-sign")


def test_token_values_are_never_echoed_in_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError) as info:
        load(tmp_path, "[engine]\ntoken = 12345678\n")
    assert "12345678" not in str(info.value)


def test_cli_prints_one_message_with_a_hint(cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[response]\ntop_p = 0\n")
    result = cli("generate", str(path), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert f"{path}" in result.stderr and "response.top_p" in result.stderr
    assert "Hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_env_shows_the_traceback(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MAGPIE_HUB_DEBUG", "1")
    with pytest.raises(ConfigValidationError):
        from magpie_hub.cli.main import main

        path = tmp_path / "bad.toml"
        path.write_text("num_rows = 0\n")
        main(["generate", str(path)])


def test_starter_configs_of_every_recipe_validate(cli, tmp_path: Path) -> None:
    for name in get_registry().recipes:
        path = tmp_path / f"{name}.toml"
        result = cli("init", str(path), "--recipe", name)
        assert result.exit_code == 0, result.stderr
        cfg = load_config(path, get_registry())
        assert cfg.recipe == name
        assert cfg.engine.model == "embedded:smollm2"
    again = cli("init", str(tmp_path / "magpie.toml"))
    assert again.exit_code == 1 and "--force" in again.stderr


def test_fingerprints_of_0_2_0_builds_are_unchanged() -> None:
    """New fields that do not change the rows ([execution], tensor parallelism) stay out of
    the fingerprint, so a build made with 0.2.0 resumes (values computed with 0.2.0)."""
    from magpie_hub.config import RunConfig

    assert RunConfig().fingerprint() == "e96b39c9460eeec2"
    changed = RunConfig.model_validate(
        {"engine": {"threads": 2, "model": "x.gguf"}, "seed": 3, "execution": {"backend": "ray"}}
    )
    assert changed.fingerprint() == "5b5182ff15ef1387"
