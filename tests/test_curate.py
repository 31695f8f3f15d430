"""`magpie-hub curate` end to end: tags, resume, filters, errors, and publish with curation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import tiny_config, write_config
from curate_helpers import ROWS, curate_config, make_build, tree_digest

from magpie_hub.curate.labels import CATEGORIES, DIFFICULTY, QUALITY

EMBEDDED_JUDGE = '[curate.judge]\nname = "llamacpp"\nmodel = "embedded:smollm2"\n'
FILTER = """
[filter]
rules = [
    { column = "min_similar_uuid", op = "first_of_group" },
    { column = "instruction", op = "not_endswith", value = ":" },
]
"""


def rows_of(build: Path, view: str | None = None) -> list[dict]:
    folder = build / "data" / view if view else build / "data"
    return [r for p in sorted(folder.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.mark.slow
def test_language_and_near_duplicates_then_the_filter(cli, tmp_path: Path) -> None:
    build = make_build(tmp_path / "build")
    config = curate_config(tmp_path / "c.toml", ["language", "near_dup"], extra=FILTER)
    result = cli("curate", str(config), "--out", str(build), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["computed_this_run"] == {"language": 8, "near_dup": 8}

    rows = rows_of(build)
    assert [r["uuid"] for r in rows] == [f"row-{i:04d}" for i in range(8)]
    assert [r["language"] for r in rows] == ["EN"] * 6 + ["FR", "EN"]
    # rows 0, 1 (exact) and 2 (near) are one group; the earliest survives
    assert [r["min_similar_uuid"] for r in rows[:3]] == ["row-0000"] * 3
    assert all(r["min_similar_uuid"] == r["uuid"] for r in rows[3:])
    assert rows[1]["min_neighbor_distance"] == 0.0 and rows[0]["repeat_count"] == 2
    assert 0 < rows[2]["min_neighbor_distance"] < 0.05
    kept = [r["uuid"] for r in rows_of(build, "filtered")]
    assert kept == ["row-0000", "row-0003", "row-0004", "row-0005", "row-0006"]

    manifest = json.loads((build / "manifest.json").read_text())
    funnel = manifest["filter"]["funnel"]
    assert [s["rows_after"] for s in funnel] == [8, 6, 5]
    assert [s["removed"] for s in funnel] == [0, 2, 1]
    assert manifest["views"]["filtered"]["rows"] == 5
    assert "data/filtered/train-00000-of-00001.parquet" in manifest["data_files"]

    again = cli("curate", str(config), "--out", str(build), "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["computed_this_run"] == {}  # every tag came from the store
    assert rows_of(build) == rows


@pytest.mark.slow
def test_an_extra_tagger_computes_only_the_missing_one(cli, with_plugins, tmp_path) -> None:
    build = make_build(tmp_path / "build")
    first = curate_config(tmp_path / "a.toml", ["language"])
    assert cli("curate", str(first), "--out", str(build)).exit_code == 0
    before = rows_of(build)
    second = curate_config(tmp_path / "b.toml", ["language", "word_count"])  # example plugin
    result = cli("curate", str(second), "--out", str(build), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["computed_this_run"] == {"word_count": 8}
    after = rows_of(build)
    assert [r["language"] for r in after] == [r["language"] for r in before]
    assert [r["instruction_words"] for r in after] == [len(t.split()) for t in ROWS]


def test_a_tag_with_no_duplicates_loses_nothing(cli, tmp_path: Path) -> None:
    """The filter's duplicate rule on a build without duplicates keeps every row (planned
    rows and the funnel, no model: a rule on columns the build already has)."""
    from magpie_hub.config import FilterConfig, FilterRule
    from magpie_hub.curate.filters import apply_filter, plan_filter

    rows = [{"uuid": f"u{i}", "min_similar_uuid": f"u{i}", "response": "x"} for i in range(5)]
    plan = plan_filter(
        FilterConfig(rules=[FilterRule(column="min_similar_uuid", op="first_of_group")]),
        {c: None for c in rows[0]},
    )
    assert apply_filter(rows, plan)[0] == rows


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("unknown_tagger", "unknown tagger 'sentiment'; available: category, difficulty"),
        ("unknown_preset", "unknown filter preset 'magpie-1m'; available: magpie-300k"),
        ("missing_tag", "no column 'input_quality' in this build"),
        ("unknown_label", "'great' is not a label of 'input_quality'"),
        ("judge_missing", "model not found: /nowhere/judge.gguf"),
        ("judge_random_bytes", "not a readable GGUF file"),
        ("reward_unset", "tagger 'reward' needs curate.reward.model"),
        ("reward_missing", "model not found: /nowhere/rm"),
        ("not_generated", "not a build folder (no manifest.json)"),
        ("running", "the build is running, not complete"),
        ("no_shards", "the build has no rows on disk (no data/*.parquet)"),
        ("no_rows", "the build has no rows to curate (every attempted row was dropped"),
        ("no_section", "has no [curate] section"),
        ("bad_field", "curate.batch_size"),
    ],
)
def test_bad_input_gives_one_clear_message_and_leaves_the_build(cli, tmp_path, setup, message):  # type: ignore[no-untyped-def]
    build = make_build(tmp_path / "build")
    config = tmp_path / "c.toml"
    taggers, extra, judge = ["language"], "", ""
    if setup == "unknown_tagger":
        taggers = ["language", "sentiment"]
    elif setup == "unknown_preset":
        extra = '[filter]\npreset = "magpie-1m"\n'
    elif setup == "missing_tag":
        extra = '[filter]\nrules = [{column = "input_quality", op = ">=", value = "good"}]\n'
    elif setup == "unknown_label":
        taggers = ["quality", "language"]
        judge = EMBEDDED_JUDGE
        extra = '[filter]\nrules = [{column = "input_quality", op = ">=", value = "great"}]\n'
    elif setup == "judge_missing":
        taggers = ["quality"]
        judge = '[curate.judge]\nname = "llamacpp"\nmodel = "/nowhere/judge.gguf"\n'
    elif setup == "judge_random_bytes":
        taggers = ["quality"]
        (tmp_path / "judge.gguf").write_bytes(os.urandom(4096))
        judge = f'[curate.judge]\nname = "llamacpp"\nmodel = "{tmp_path / "judge.gguf"}"\n'
    elif setup == "reward_unset":
        taggers = ["reward"]
    elif setup == "reward_missing":
        taggers, extra = ["reward"], '[curate.reward]\nmodel = "/nowhere/rm"\n'
    elif setup == "not_generated":
        (build / "manifest.json").unlink()
    elif setup == "no_shards":  # damaged by hand: the manifest says complete, data/ is gone
        for shard in (build / "data").glob("*.parquet"):
            shard.unlink()
    elif setup == "no_rows":  # every attempted row was dropped
        build = make_build(tmp_path / "empty", [])
    elif setup == "running":
        manifest = json.loads((build / "manifest.json").read_text())
        (build / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    curate_config(config, taggers, extra=extra, judge=judge)
    if setup == "no_section":
        config.write_text('recipe = "magpie"\n')
    elif setup == "bad_field":
        config.write_text("[curate]\nbatch_size = 0\n")
    before = tree_digest(build)
    result = cli("curate", str(config), "--out", str(build))
    assert result.exit_code == 1, result.stderr
    assert message in result.stderr
    assert "Hint:" in result.stderr and "Traceback" not in result.stderr
    assert tree_digest(build) == before
    if setup == "missing_tag":
        assert "Add the tagger 'quality'" in result.stderr


def _judge_build(root: Path) -> Path:
    return make_build(root, ROWS[:6])


def _judge_columns(build: Path) -> list[dict]:
    keep = ("uuid", "input_quality", "quality_explanation", "difficulty", "intent")
    keep += ("knowledge", "task_category", "other_task_category")
    return [{k: r[k] for k in keep} for r in rows_of(build)]


@pytest.mark.slow
@pytest.mark.embedded
def test_kill_9_mid_curate_then_rerun_equals_an_uninterrupted_run(embedded_model, tmp_path):  # type: ignore[no-untyped-def]
    config = curate_config(
        tmp_path / "c.toml",
        ["quality", "difficulty", "category"],
        extra="judge_max_new_tokens = 160\n",
        judge=EMBEDDED_JUDGE,
    )
    config.write_text(config.read_text().replace("batch_size = 3", "batch_size = 1"))
    env = {**os.environ, "MAGPIE_HUB_DEBUG": "1"}
    cmd = [sys.executable, "-m", "magpie_hub", "curate", str(config), "--json", "--out"]

    whole = _judge_build(tmp_path / "whole")
    done = subprocess.run([*cmd, str(whole)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    for name in ("quality", "difficulty", "category"):  # the grammar makes every answer parse
        assert summary["taggers"][name]["errors_by_reason"] == {}, summary["taggers"][name]
    expected = _judge_columns(whole)
    assert {r["input_quality"] for r in expected} <= set(QUALITY)
    assert {r["difficulty"] for r in expected} <= set(DIFFICULTY)
    assert {r["task_category"] for r in expected} <= set(CATEGORIES)
    assert all(set(r["other_task_category"]) <= set(CATEGORIES) for r in expected)

    killed = _judge_build(tmp_path / "killed")
    proc = subprocess.Popen(
        [*cmd, str(killed)], env=env, start_new_session=True, stdout=subprocess.DEVNULL
    )
    store = killed / ".magpie" / "curate"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(store.glob("*/chunk-*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = {
        d.name.split("-")[0]: sum(len(json.loads(m.read_text())["uuids"]) for m in d.glob("*.json"))
        for d in store.iterdir()
    }
    assert 0 < sum(committed.values()) < 18, committed  # killed mid-run
    rerun = subprocess.run([*cmd, str(killed)], capture_output=True, text=True, env=env)
    assert rerun.returncode == 0, rerun.stderr
    computed = json.loads(rerun.stdout)["computed_this_run"]
    for name in ("quality", "difficulty", "category"):  # nothing computed twice, none lost
        assert computed.get(name, 0) == 6 - committed.get(name, 0)
    assert _judge_columns(killed) == expected


@pytest.mark.slow
def test_reward_tags_on_pairs_and_single_answers(cli, tiny_reward_model, tmp_path) -> None:
    extra = f'[curate.reward]\nmodel = "{tiny_reward_model}"\n'
    single = make_build(tmp_path / "single", ROWS[:3])
    config = curate_config(tmp_path / "c.toml", ["reward"], extra=extra)
    assert cli("curate", str(config), "--out", str(single)).exit_code == 0
    rows = rows_of(single)
    assert all(isinstance(r["instruct_reward"], float) for r in rows)
    assert rows[0]["reward_model"] == str(tiny_reward_model)
    assert "base_reward" not in rows[0]

    pairs = make_build(tmp_path / "pairs", ROWS[3:6], response_base=["a", "b", "c"])
    assert cli("curate", str(config), "--out", str(pairs)).exit_code == 0
    for r in rows_of(pairs):
        assert r["reward_difference"] == pytest.approx(r["instruct_reward"] - r["base_reward"])


@pytest.mark.slow
def test_publish_curates_and_pushes_default_and_filtered(cli, hub, tiny_model, tmp_path) -> None:
    from datasets import load_dataset

    curate = '\n[curate]\ntaggers = ["language", "near_dup"]\n' + FILTER
    text = tiny_config(tiny_model, num_rows=6) + curate
    config = write_config(tmp_path / "c.toml", text)
    args = ("publish", str(config), "--repo", "alice/cur", "--tag", "v1", "--json")
    args += ("--out", str(tmp_path / "build"))
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    ran = {s["name"]: s["ran"] for s in json.loads(first.stdout)["stages"]}
    assert ran == {"generate": True, "curate": True, "card": True, "push": True}
    default = load_dataset("alice/cur", "default", revision="v1", split="train").to_list()
    filtered = load_dataset("alice/cur", "filtered", revision="v1", split="train").to_list()
    assert {"language", "min_similar_uuid", "repeat_count"} <= set(default[0])
    survivors = [
        r["uuid"]
        for r in default
        if r["min_similar_uuid"] == r["uuid"] and not r["instruction"].rstrip().endswith(":")
    ]
    assert [r["uuid"] for r in filtered] == survivors
    # the pushed card's curation numbers, recomputed from the pushed Parquet
    from collections import Counter

    from huggingface_hub import hf_hub_download

    card = Path(hf_hub_download("alice/cur", "README.md", repo_type="dataset", revision="v1"))
    text = card.read_text()
    assert f"Config `filtered` holds {len(filtered)} rows" in text
    later = sum(1 for r in default if r["min_similar_uuid"] != r["uuid"])
    assert f"| later copies, removed by first_of_group | {later} |" in text
    for language, n in Counter(r["language"] for r in default).items():
        assert f"| {language} | {n} |" in text
    second = cli(*args)
    assert {s["name"]: s["ran"] for s in json.loads(second.stdout)["stages"]} == {
        "generate": False,
        "curate": False,
        "card": False,
        "push": False,
    }
    shutil.rmtree(tmp_path / "build")


@pytest.mark.slow
@pytest.mark.embedded
def test_init_curate_config_runs_as_is_on_generated_and_imported_builds(
    cli, embedded_model, tmp_path
) -> None:
    config = tmp_path / "m.toml"
    assert cli("init", str(config), "--curate").exit_code == 0
    generated = tmp_path / "generated"
    made = cli("generate", str(config), "--out", str(generated), "-n", "2", "--json")
    assert made.exit_code == 0, made.stderr

    source = tmp_path / "data.jsonl"
    source.write_text(
        "".join(
            json.dumps({"instruction": t, "response": "An answer."}) + "\n"
            for t in (*ROWS[:3], "Name three rivers:")
        )
    )
    imported = tmp_path / "imported"
    assert cli("import", str(source), "--out", str(imported)).exit_code == 0

    for build in (generated, imported):
        result = cli("curate", str(config), "--out", str(build), "--json")
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout)
        assert set(summary["taggers"]) == {
            "quality",
            "difficulty",
            "category",
            "language",
            "near_dup",
        }
        assert summary["judge"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        rows = rows_of(build)
        kept = rows_of(build, "filtered")
        expect = [
            r["uuid"]
            for r in rows
            if r["min_similar_uuid"] == r["uuid"] and not r["instruction"].rstrip().endswith(":")
        ]
        assert [r["uuid"] for r in kept] == expect
    # rows 0-2 are one duplicate group (one survives), row 3 ends with ':'
    assert [r["instruction"] for r in rows_of(imported, "filtered")] == [ROWS[0]]
