"""`magpie-hub generate` end to end on the tiny model (transformers engine)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import tiny_config, write_config
from datasets import List, Value, load_dataset

from magpie_hub.engines.base import file_sha256

COLUMNS = {
    "uuid",
    "instruction",
    "response",
    "conversation",
    "system_prompt",
    "system_prompt_key",
    "model",
    "pre_query_template",
    "gen_config",
}


def rows_of(build: Path) -> list[dict]:
    return [
        r for f in sorted((build / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]


@pytest.fixture(scope="module")
def tiny_build(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from magpie_hub.cli.main import main

    work = tmp_path_factory.mktemp("tiny-build")
    config = write_config(work / "magpie-hub.toml", tiny_config(tiny_model, num_rows=6))
    main(["generate", str(config), "--out", str(work / "build"), "--quiet"])  # exits only on error
    return work / "build"


def test_rows_have_the_magpie_columns(tiny_build: Path, tiny_model: Path) -> None:
    rows = rows_of(tiny_build)
    manifest = json.loads((tiny_build / "manifest.json").read_text())
    assert rows, "the tiny model wrote no usable row"
    assert len(rows) == manifest["counts"]["generated"]
    for row in rows:
        assert set(row) == COLUMNS
        assert row["instruction"].strip() and row["response"].strip()
        assert row["conversation"] == [
            {"role": "user", "content": row["instruction"]},
            {"role": "assistant", "content": row["response"]},
        ]
        assert row["system_prompt"] is None and row["system_prompt_key"] is None
        assert row["pre_query_template"] == manifest["pre_query_template"]
        assert row["gen_config"]["seed"] == 7
        assert row["gen_config"]["response"]["temperature"] == 0.0
        # every setting reaches the row (stop_at_newline and ban_first_tokens were lost)
        assert row["gen_config"]["instruction"] == manifest["config"]["instruction"]
        assert row["gen_config"]["response"] == manifest["config"]["response"]
    assert len({r["uuid"] for r in rows}) == len(rows)


@pytest.mark.parametrize("recipe", ["magpie", "magpie-mt", "magpie-ultra"])
def test_gen_config_holds_every_sampling_setting(recipe: str) -> None:
    from magpie_hub.plugins import get_registry

    entry = get_registry().recipe(recipe)
    gen_config = entry.features["gen_config"]
    defaults = entry.config_model()
    for step in ("instruction", "response", "base"):
        if step in gen_config:
            assert set(gen_config[step]) == set(getattr(defaults, step).model_dump()), step


def test_manifest_contents(tiny_build: Path, tiny_model: Path) -> None:
    m = json.loads((tiny_build / "manifest.json").read_text())
    assert m["status"] == "complete" and m["recipe"] == "magpie"
    assert m["config"]["engine"]["model"] == str(tiny_model)
    assert m["config"]["num_rows"] == 6
    assert "token" not in m["config"]["engine"]
    assert set(m["versions"]) == {
        "magpie-hub",
        "distilabel",
        "engine:transformers",
        "python",
        "plugin:recipe_magpie",
        "plugin:engine_transformers",
    }
    assert m["versions"]["plugin:recipe_magpie"] == m["versions"]["magpie-hub"]
    assert m["versions"]["distilabel"] == "1.5.3"
    assert m["model"]["sha256"] == file_sha256(tiny_model)
    assert m["model"]["engine"] == "transformers"
    assert m["pre_query_template"] == (
        "<|im_start|>system\nYou are a tiny test model.<|im_end|>\n<|im_start|>user\n"
    )
    assert m["seed"] == 7
    counts = m["counts"]
    assert counts["requested"] == 6
    assert counts["generated"] + counts["dropped"] == 6
    assert sum(counts["dropped_by_reason"].values()) == counts["dropped"]
    assert counts["pending"] == 0
    assert m["timings"]["total_seconds"] > 0
    assert m["data_files"] == ["data/train-00000-of-00001.parquet"]


def test_build_loads_with_datasets(tiny_build: Path) -> None:
    ds = load_dataset("parquet", data_files=str(tiny_build / "data" / "*.parquet"), split="train")
    assert ds.num_rows == len(rows_of(tiny_build))
    from magpie_hub_plugins.recipe_magpie import FEATURES

    from magpie_hub.row_types import features

    assert ds.features == features(FEATURES)
    assert ds.features["conversation"] == List(
        {"role": Value("string"), "content": Value("string")}
    )


def test_same_seed_same_rows_and_rerun_is_a_no_op(cli, tiny_build, tiny_model, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=6, batch_size=2))
    # a different batch size changes the fingerprint but not a row's text
    result = cli("generate", str(config), "--out", str(tmp_path / "b"), "--json")
    assert result.exit_code == 0, result.stderr
    first = rows_of(tiny_build)
    again = rows_of(tmp_path / "b")
    assert [r["instruction"] for r in again] == [r["instruction"] for r in first]
    assert [r["response"] for r in again] == [r["response"] for r in first]

    before = hashlib.sha256((tmp_path / "b/data/train-00000-of-00001.parquet").read_bytes())
    rerun = cli("generate", str(config), "--out", str(tmp_path / "b"), "--json")
    summary = json.loads(rerun.stdout)
    assert summary["resumed"] is True and summary["pending"] == 0
    after = hashlib.sha256((tmp_path / "b/data/train-00000-of-00001.parquet").read_bytes())
    assert before.hexdigest() == after.hexdigest()


def test_growing_num_rows_keeps_finished_rows(cli, tiny_model, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=3))
    out = str(tmp_path / "b")
    assert cli("generate", str(config), "--out", out, "--quiet").exit_code == 0
    small = rows_of(tmp_path / "b")
    summary = json.loads(cli("generate", str(config), "--out", out, "-n", "6", "--json").stdout)
    assert summary["requested"] == 6 and summary["resumed"] is True
    grown = rows_of(tmp_path / "b")
    assert grown[: len(small)] == small
    assert len({r["uuid"] for r in grown}) == len(grown) == summary["generated"]


def test_a_different_config_is_refused_unless_forced(cli, tiny_model, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=2, batch_size=2))
    out = str(tmp_path / "b")
    assert cli("generate", str(config), "--out", out, "--quiet").exit_code == 0
    refused = cli("generate", str(config), "--out", out, "--set", "seed=8")
    assert refused.exit_code == 1
    assert "different config or model" in refused.stderr and "--force" in refused.stderr
    forced = cli("generate", str(config), "--out", out, "--set", "seed=8", "--force", "--json")
    assert forced.exit_code == 0
    assert json.loads((tmp_path / "b/manifest.json").read_text())["seed"] == 8


def test_a_folder_with_other_files_is_refused(cli, tiny_model, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=2))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    result = cli("generate", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1 and "holds no magpie-hub build" in result.stderr


def test_a_changed_model_file_is_refused(cli, tiny_model, tmp_path) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    config = write_config(tmp_path / "c.toml", tiny_config(model, num_rows=2, batch_size=2))
    out = str(tmp_path / "b")
    assert cli("generate", str(config), "--out", out, "--quiet").exit_code == 0
    with (model / "generation_config.json").open("a") as fh:
        fh.write("\n")  # same path, different bytes
    refused = cli("generate", str(config), "--out", out)
    assert refused.exit_code == 1
    assert "different config or model" in refused.stderr
