"""Plugin discovery: built-ins, an installed third-party plugin, the allowlist, a broken plugin."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from magpie_hub import hookspecs
from magpie_hub.plugins import DEFAULT_PLUGINS, load_plugins

REPO = Path(__file__).parent.parent


def test_builtins_register_through_the_hooks() -> None:
    loaded = load_plugins()
    assert set(loaded.registry.recipes) >= {"magpie"}
    assert set(loaded.registry.engines) >= {"llamacpp", "transformers"}
    builtins = {i.name for i in loaded.infos.values() if i.builtin}
    assert builtins == {m.rsplit(".", 1)[-1] for m in DEFAULT_PLUGINS}
    assert loaded.infos["recipe_magpie"].hooks == ["register_recipes", "register_review_specs"]
    assert loaded.registry.recipes["magpie"].plugin == "recipe_magpie"


def test_plugins_json_lists_each_plugin_with_what_it_registers(cli, with_plugins) -> None:
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    for item in listed.values():
        assert {"name", "version", "hooks", "recipes", "engines"} <= set(item)
    example = listed["example"]
    assert example["version"] == "1.2.3"
    assert example["hooks"] == [
        "register_card_sections",
        "register_commands",
        "register_engines",
        "register_recipes",
        "register_review_specs",
        "register_scorers",
        "register_taggers",
    ]
    assert example["card_sections"] == ["example-notes"]
    assert example["taggers"] == ["word_count"]
    assert listed["taggers"]["taggers"] == [
        "quality",
        "difficulty",
        "category",
        "safety",
        "language",
        "reward",
        "near_dup",
    ]
    assert example["scorers"] == ["length"]
    assert example["recipes"] == ["instructions-only"]
    assert example["engines"] == ["echo"]
    assert listed["engine_llamacpp"]["engines"] == ["llamacpp"]


def test_third_party_command_recipe_and_engine_work(cli, with_plugins, tmp_path: Path) -> None:
    hello = cli("example-hello", "--name", "magpie")
    assert hello.exit_code == 0
    assert "hello magpie from the example plugin" in hello.stdout

    config = tmp_path / "c.toml"
    config.write_text(
        'recipe = "instructions-only"\nnum_rows = 4\nbatch_size = 2\n'
        '[engine]\nname = "echo"\nmodel = "x"\n'
    )
    out = tmp_path / "build"
    result = cli("generate", str(config), "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["generated"] == 4 and summary["model"] == "echo/x"

    import pyarrow.parquet as pq

    rows = pq.read_table(out / "data" / "train-00000-of-00001.parquet").to_pylist()
    assert [r["instruction"].startswith("Echo question number") for r in rows] == [True] * 4


def test_allowlist_restricts_entry_point_plugins(cli, with_plugins, monkeypatch) -> None:
    monkeypatch.setenv("MAGPIE_HUB_PLUGINS", "example")
    names = {p["name"] for p in json.loads(cli("plugins", "--json").stdout)}
    assert "example" in names and "broken" not in names
    assert "recipe_magpie" in names  # built-ins always load

    monkeypatch.setenv("MAGPIE_HUB_PLUGINS", "")
    names = {p["name"] for p in json.loads(cli("plugins", "--json").stdout)}
    assert "example" not in names and "broken" not in names
    unknown = cli("example-hello")
    assert unknown.exit_code != 0


def test_broken_plugin_is_reported_and_other_commands_work(cli, with_plugins, tmp_path) -> None:
    listed = {p["name"]: p for p in json.loads(cli("plugins", "--json").stdout)}
    assert "magpie_hub_dependency_that_is_not_installed" in listed["broken"]["error"]
    assert "ModuleNotFoundError" in listed["broken"]["error"]

    table = cli("plugins")
    assert "broken" in table.stdout and "failed" in table.stdout

    init = cli("init", str(tmp_path / "m.toml"))
    assert init.exit_code == 0
    assert (tmp_path / "m.toml").exists()
    assert "plugin 'broken' failed to load" in init.stderr


def test_duplicate_names_are_reported_not_silently_replaced() -> None:
    from magpie_hub.errors import PluginError
    from magpie_hub.registry import Registry

    loaded = load_plugins()
    registry = Registry()
    engine = loaded.registry.engines["llamacpp"]
    registry.add(engine, "first")
    with pytest.raises(PluginError, match="already registered by plugin 'first'"):
        registry.add(engine, "second")


def _hook_names() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "magpie_hub_spec")
    ]


def test_every_hook_is_tested() -> None:
    tested = (REPO / "tests" / "fixtures" / "example_plugin").rglob("*.py")
    text = "\n".join(p.read_text() for p in tested)
    assert _hook_names(), "no hookspecs found"
    for hook in _hook_names():
        assert re.search(rf"def {hook}\(", text), f"hook {hook} has no implementation under test"


def test_every_hook_is_documented() -> None:
    doc = (REPO / "CONTRIBUTING.md").read_text()
    for hook in _hook_names():
        assert f"`{hook}(" in doc, f"hook {hook} is not documented in CONTRIBUTING.md"


def test_a_recipe_given_another_config_model_gets_a_plugin_error() -> None:
    """Recipes narrowed their config with `assert` (an AssertionError, or nothing under -O)."""
    from magpie_hub_plugins.recipe_magpie import MagpieConfig

    from magpie_hub.config import RunConfig
    from magpie_hub.errors import PluginError
    from magpie_hub.registry import recipe_config

    with pytest.raises(PluginError, match="expected a MagpieConfig config, got RunConfig"):
        recipe_config(RunConfig(), MagpieConfig)
    config = MagpieConfig()
    assert recipe_config(config, MagpieConfig) is config


def test_scorer_names_are_checked_against_the_registry_load_config_was_given(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The validator reads the registry from the validation context, not a global."""
    from magpie_hub_plugins.recipe_magpie_ultra import UltraConfig

    from magpie_hub.config import load_config, validate
    from magpie_hub.errors import ConfigValidationError
    from magpie_hub.plugins import get_registry

    path = tmp_path / "c.toml"
    path.write_text('recipe = "magpie-ultra"\n[scorer]\nname = "nope"\n')
    with pytest.raises(ConfigValidationError) as caught:
        load_config(path, get_registry())
    assert caught.value.field == "scorer" and "unknown scorer 'nope'" in str(caught.value)
    # without a registry (a config built in code) the name is checked when the pipeline is
    assert validate({"recipe": "magpie-ultra", "scorer": {"name": "nope"}}, UltraConfig)
