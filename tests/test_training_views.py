"""Training-ready views (`sharegpt`, `alpaca`) chosen in config, for every recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import tiny_config, write_config

from magpie_hub.config import RunConfig
from magpie_hub.generate.training_views import alpaca, sharegpt, training_views, unselected


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


ROWS = [
    {"uuid": "a", "conversation": [msg("user", "Hi?"), msg("assistant", "Hello.")]},
    {
        "uuid": "b",
        "conversation": [msg("system", "Be brief."), msg("user", "Q"), msg("assistant", "A")],
    },
    {
        "uuid": "c",
        "conversation": [
            msg("user", "1"),
            msg("assistant", "2"),
            msg("user", "3"),
            msg("assistant", "4"),
        ],
    },
    {"uuid": "d", "conversation": [msg("user", "unanswered")]},
    {"uuid": "e", "instruction": "No conversation column", "response": "still usable"},
    {"uuid": "f", "instruction": "only an instruction"},
]


def test_sharegpt_maps_roles_and_counts_what_it_leaves_out() -> None:
    view = sharegpt(ROWS)
    assert [r["uuid"] for r in view.rows] == ["a", "b", "c", "e"]
    assert view.rows[1]["conversations"] == [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Q"},
        {"from": "gpt", "value": "A"},
    ]
    assert view.counts == {"left_out": 2, "left_out_no_answer": 2}


def test_alpaca_takes_single_turns_only() -> None:
    view = alpaca(ROWS)
    assert view.rows == [
        {"uuid": "a", "instruction": "Hi?", "input": "", "output": "Hello."},
        {"uuid": "b", "instruction": "Q", "input": "", "output": "A"},
        {
            "uuid": "e",
            "instruction": "No conversation column",
            "input": "",
            "output": "still usable",
        },
    ]
    assert view.counts == {
        "left_out": 3,
        "left_out_multi_turn": 1,
        "left_out_no_answer": 2,
        "system_prompt_not_kept": 1,
    }


def test_choice_and_stale_views() -> None:
    assert set(training_views(ROWS, ["alpaca"])) == {"alpaca"}
    assert unselected(["alpaca"]) == ["sharegpt"]
    assert RunConfig().views == []
    # Views are derived after the build: choosing them does not change the rows' identity.
    assert RunConfig(views=["sharegpt"]).fingerprint() == RunConfig().fingerprint()


def test_unknown_view_is_a_config_error(cli, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", 'views = ["openai"]\n')
    result = cli("generate", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "views.0" in result.stderr


@pytest.mark.slow
def test_views_are_written_as_configs_and_removed_when_unchosen(
    cli, tiny_model: Path, tmp_path: Path
) -> None:
    from datasets import load_dataset

    build = tmp_path / "build"
    config = write_config(
        tmp_path / "c.toml",
        tiny_config(tiny_model, num_rows=4, batch_size=2, extra='views = ["sharegpt", "alpaca"]'),
    )
    result = cli("generate", str(config), "--out", str(build), "-q")
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((build / "manifest.json").read_text())
    kept = manifest["counts"]["generated"]
    assert manifest["views"]["sharegpt"]["rows"] == kept
    assert manifest["views"]["alpaca"]["rows"] == kept  # single-turn recipe: all of them
    rows = pq.read_table(build / "data" / "train-00000-of-00001.parquet").to_pylist()

    tree = tmp_path / "tree"
    args = ("publish", str(config), "--repo", "alice/tv", "--tag", "v1", "--out", str(build))
    published = cli(*args, "--local", str(tree))
    assert published.exit_code == 0, published.stderr
    share = load_dataset(str(tree), "sharegpt", split="train").to_list()
    assert [r["conversations"][-1]["value"] for r in share] == [r["response"] for r in rows]
    alp = load_dataset(str(tree), "alpaca", split="train").to_list()
    assert [r["instruction"] for r in alp] == [r["instruction"] for r in rows]

    # The same build with alpaca no longer chosen: its folder goes, the rows stay.
    config.write_text(config.read_text().replace('"sharegpt", "alpaca"', '"sharegpt"'))
    again = cli("generate", str(config), "--out", str(build), "-q")
    assert again.exit_code == 0, again.stderr
    assert not (build / "data" / "alpaca").exists()
    assert (build / "data" / "sharegpt").is_dir()
    assert "alpaca" not in json.loads((build / "manifest.json").read_text())["views"]
