"""System prompts: one, a list, a weighted table, the built-in library; chosen per row."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_config

from magpie_hub.config import load_config
from magpie_hub.errors import ConfigValidationError, UnknownNameError
from magpie_hub.plugins import get_registry
from magpie_hub.prompts.system_prompts import LIBRARY, WeightedPrompt, choose, expand


def test_expand_forms() -> None:
    assert expand(None) == [(None, None, 1.0)]
    assert expand("Be brief.") == [("custom", "Be brief.", 1.0)]
    assert expand(["A", "@math"]) == [("custom-0", "A", 1.0), ("math", LIBRARY["math"][0], 1.0)]
    table = expand(
        {
            "short": WeightedPrompt(prompt="Be brief.", weight=3),
            "code": WeightedPrompt(prompt="@coding"),
        }
    )
    assert table == [("short", "Be brief.", 3.0), ("code", LIBRARY["coding"][0], 1.0)]
    library = expand("@library")
    assert [c[0] for c in library] == list(LIBRARY)
    assert sum(c[2] for c in library) == pytest.approx(1.0)
    with pytest.raises(UnknownNameError, match="@mathematics"):
        expand("@mathematics")


def test_library_covers_the_magpie_categories() -> None:
    assert set(LIBRARY) == {
        "information-seeking",
        "reasoning",
        "planning",
        "editing",
        "coding",
        "math",
        "data-analysis",
        "creative-writing",
        "advice-seeking",
        "brainstorming",
        "role-playing",
    }


def test_choice_follows_the_weights_and_the_seed() -> None:
    choices = expand({"a": WeightedPrompt(prompt="A", weight=3), "b": WeightedPrompt(prompt="B")})
    picks = Counter(choose(choices, seed)[0] for seed in range(4000))
    assert 0.70 < picks["a"] / 4000 < 0.80
    assert choose(choices, 7) == choose(choices, 7)


def test_unknown_library_name_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", 'system_prompt = ["@math", "@cooking"]\n')
    with pytest.raises(ConfigValidationError) as info:
        load_config(path, get_registry())
    assert "system_prompt" in str(info.value) and "@cooking" in str(info.value)


def test_rows_record_their_system_prompt(cli, with_plugins, tmp_path: Path) -> None:
    # the example plugin's `echo` engine always answers, so every row is checked
    config = write_config(
        tmp_path / "c.toml",
        """
num_rows = 12
batch_size = 4
system_prompt = ["@math", "@coding"]
[engine]
name = "echo"
model = "x"
""",
    )
    result = cli("generate", str(config), "--out", str(tmp_path / "b"), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["generated"] == 12
    rows = pq.read_table(tmp_path / "b/data/train-00000-of-00001.parquet").to_pylist()
    assert {r["system_prompt_key"] for r in rows} == {"math", "coding"}
    for row in rows:
        assert row["system_prompt"] == LIBRARY[row["system_prompt_key"]][0]
        assert row["conversation"][0] == {"role": "system", "content": row["system_prompt"]}
        assert row["pre_query_template"] == (
            f"<|im_start|>system\n{row['system_prompt']}<|im_end|>\n<|im_start|>user\n"
        )


def test_a_weighted_table_is_recorded_in_the_manifest_config(tmp_path: Path) -> None:
    """A table of prompts is plain data in the fingerprint and the manifest (was a crash)."""
    from magpie_hub.config import redacted_dump

    path = write_config(
        tmp_path / "c.toml",
        'recipe = "magpie"\n[system_prompt.math]\nprompt = "@math"\nweight = 2\n'
        '[system_prompt.code]\nprompt = "Write code."\n',
    )
    cfg = load_config(path, get_registry())
    dumped = json.loads(json.dumps(redacted_dump(cfg)))
    assert dumped["system_prompt"] == {
        "math": {"prompt": "@math", "weight": 2.0},
        "code": {"prompt": "Write code.", "weight": 1.0},
    }
    assert len(cfg.fingerprint()) == 16
