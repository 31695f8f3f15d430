"""Recipe `magpie-ultra`: URIAL base prompts, the chat-token guard, scorers, sft/dpo views."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import write_config
from magpie_hub_plugins.recipe_magpie_ultra import DPO_FEATURES, UltraConfig, views
from magpie_hub_plugins.scorers import pairwise_scores, parse_verdict

from magpie_hub.errors import ConfigError
from magpie_hub.prompts.urial import (
    UrialTemplate,
    clean_base_response,
    find_chat_tokens,
    load_urial,
    template_markers,
)
from magpie_hub.row_types import features

CHAT_PROMPTS = [
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<bos><start_of_turn>user\nHi<end_of_turn>\n",
    "<s> [INST] Hi [/INST]",
]


def test_the_base_prompt_for_a_known_instruction_is_the_urial_rendering() -> None:
    template = UrialTemplate("# Instruction\n\nBe helpful.\n\n\n", (("What is 2+2?", "4."),))
    assert template.render("Name a prime number.") == (
        "# Instruction\n\nBe helpful.\n\n\n"
        "# Query:\n```What is 2+2?```\n\n# Answer:\n```\n4.\n```\n\n"
        "# Query:\n```Name a prime number.```\n\n# Answer:\n```\n"
    )
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert template.render("And you?", history).endswith(
        "# Query:\n```Hi```\n\n# Answer:\n```\nHello!\n```\n\n"
        "# Query:\n```And you?```\n\n# Answer:\n```\n"
    )


def test_the_default_urial_prompt_holds_no_chat_token() -> None:
    prompt = UrialTemplate().render("How do I bake bread?")
    assert prompt.startswith("# Instruction")
    assert find_chat_tokens(prompt) == []
    for chat in CHAT_PROMPTS:
        assert find_chat_tokens(UrialTemplate().render(chat)), chat


def test_markers_come_from_the_models_own_templates() -> None:
    markers = template_markers("<|im_start|>user\n", "<|im_end|>")
    assert markers == ("<|im_end|>", "<|im_start|>")
    assert find_chat_tokens("plain <|im_end|> text", ("<custom_turn>",)) == ["<|im_end|>"]
    assert find_chat_tokens("a <custom_turn> b", ("<custom_turn>",)) == ["<custom_turn>"]


def test_a_urial_file_replaces_the_preamble_and_examples(tmp_path: Path) -> None:
    good = tmp_path / "u.toml"
    good.write_text('preamble = "P\\n"\n[[examples]]\nquery = "q"\nanswer = "a"\n')
    assert load_urial(good).render("x") == (
        "P\n# Query:\n```q```\n\n# Answer:\n```\na\n```\n\n# Query:\n```x```\n\n# Answer:\n```\n"
    )
    chatml = tmp_path / "bad.toml"
    chatml.write_text('preamble = "<|im_start|>system\\n"\nexamples = []\n')
    with pytest.raises(ConfigError, match="chat-template tokens"):
        load_urial(chatml)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"examples": []}))
    with pytest.raises(ConfigError, match="needs `preamble`"):
        load_urial(missing)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Paris.\n```\n\n# Query:\n```Next?```", ("Paris.", "run_on")),
        ("Paris.\n```\n\n# Q", ("Paris.", "run_on")),
        ("Paris.\n```", ("Paris.", None)),
        ("Paris.<|im_end|>\n<|im_start|>user", ("Paris.", "chat_token")),
        ("```````", (None, "empty_base_response")),
        ("  ", (None, "empty_base_response")),
        (None, (None, "empty_base_response")),
    ],
)
def test_base_responses_are_cleaned(raw: str | None, expected: tuple) -> None:
    assert clean_base_response(raw) == expected


@pytest.mark.parametrize(
    ("text", "mode", "verdict"),
    [
        ('{"rating": 7}', "absolute", 7),
        ('Sure! {"rating": 11} no, {"rating": 3}', "absolute", 3),
        ("rating: 7", "absolute", None),
        ('{"better": "B"}', "pairwise", "B"),
        ('{"better": "tie"}', "pairwise", "tie"),
        ('{"better": "C"}', "pairwise", None),
        ("{not json", "pairwise", None),
        ("", "pairwise", None),
    ],
)
def test_judge_verdicts_parse_or_are_none(text: str, mode: str, verdict: Any) -> None:
    assert parse_verdict(text, mode) == verdict


def test_pairwise_verdicts_of_both_orders_cancel_position_bias() -> None:
    assert pairwise_scores("A", "B") == (1.0, 0.0)  # instruct won both orders
    assert pairwise_scores("B", "A") == (0.0, 1.0)  # base won both orders
    assert pairwise_scores("A", "A") == (0.5, 0.5)  # always "the first one": no preference
    assert pairwise_scores("tie", "B") == (0.75, 0.25)
    assert pairwise_scores("A", None) is None


def pair_row(uuid: str, score: float | None, base: float | None) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "instruction": "q",
        "response": "good",
        "response_base": "base",
        "conversation": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "good"},
        ],
        "system_prompt": "s",
        "model": "m",
        "score": score,
        "score_base": base,
    }


def test_dpo_view_chooses_by_score_and_handles_ties_and_missing_scores() -> None:
    rows = [pair_row("a", 2.0, 1.0), pair_row("b", 0.5, 3.0), pair_row("c", 1.0, 1.0)]
    rows.append(pair_row("d", None, None))
    cfg = UltraConfig(scorer={"name": "reward-model", "model": "rm"})
    out = views(rows, cfg)
    dpo = {r["uuid"]: r for r in out["dpo"].rows}
    assert set(dpo) == {"a", "b"}
    assert out["dpo"].counts == {"dropped_tie": 1, "dropped_missing_score": 1, "by_convention": 0}
    assert dpo["a"]["chosen"] == [{"role": "assistant", "content": "good"}]
    assert dpo["b"]["chosen"] == [{"role": "assistant", "content": "base"}]
    assert dpo["b"]["chosen_from"] == "base" and dpo["b"]["margin"] == 2.5
    assert dpo["a"]["prompt"] == rows[0]["conversation"][:-1]
    assert (dpo["b"]["score_chosen"], dpo["b"]["score_rejected"]) == (3.0, 0.5)
    keep = UltraConfig(scorer={"name": "judge"}, dpo={"on_tie": "keep", "on_missing_score": "keep"})
    kept = {r["uuid"]: r for r in views(rows, keep)["dpo"].rows}
    assert kept["c"]["tie"] and kept["c"]["chosen_from"] == "instruct"
    assert kept["d"]["by_convention"] and kept["d"]["margin"] is None
    unscored = views([pair_row("e", None, None)], UltraConfig())["dpo"]
    assert unscored.counts["by_convention"] == 1 and len(unscored.rows) == 1
    assert len(out["sft"].rows) == 4


ULTRA = """
recipe = "magpie-ultra"
num_rows = {rows}
seed = 7
batch_size = 3
{top}
[engine]
name = "transformers"
model = "{instruct}"
[base_engine]
name = "transformers"
model = "{base}"
[instruction]
max_new_tokens = 24
[response]
max_new_tokens = 24
[base]
max_new_tokens = 24
urial_file = "{urial}"
[dpo]
on_tie = "keep"  # the tiny models often give the same answer: a tie
{scorer}
"""


def run_ultra(
    cli, tmp_path: Path, monkeypatch, top: str = "", **fields: Any
) -> tuple[Path, list[dict]]:
    urial = tmp_path / "urial.toml"  # the format the tiny base model was taught, no examples
    urial.write_text('preamble = ""\nexamples = []\n')
    config = write_config(tmp_path / "c.toml", ULTRA.format(urial=urial, top=top, **fields))
    log = tmp_path / "prompts.jsonl"
    monkeypatch.setenv("MAGPIE_HUB_LOG_PROMPTS", str(log))
    result = cli("generate", str(config), "--out", str(tmp_path / "build"), "--quiet")
    assert result.exit_code == 0, result.stderr
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    return tmp_path / "build", sent


def table(build: Path, config: str = "") -> list[dict]:
    folder = build / "data" / config if config else build / "data"
    return [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.mark.slow
def test_tiny_end_to_end_with_a_real_reward_model(
    cli, tiny_model, tiny_base_model, tiny_reward_model, tmp_path, monkeypatch
) -> None:
    from datasets import load_dataset

    scorer = f'[scorer]\nname = "reward-model"\nmodel = "{tiny_reward_model}"'
    build, sent = run_ultra(
        cli, tmp_path, monkeypatch, rows=6, instruct=tiny_model, base=tiny_base_model, scorer=scorer
    )
    base_prompts = [s["prompt"] for s in sent if s["prompt"].startswith("# Query:")]
    assert base_prompts and all(find_chat_tokens(p) == [] for p in base_prompts)
    rows = table(build)
    assert rows, json.loads((build / "manifest.json").read_text())["counts"]
    for r in rows:
        assert r["response_base"] and r["scorer"] == "reward-model"
        assert isinstance(r["score"], float) and isinstance(r["score_base"], float)
        assert r["score_difference"] == pytest.approx(r["score"] - r["score_base"])
        assert r["conversation"][-1] == {"role": "assistant", "content": r["response"]}
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["extra_models"]["base"]["id"] == tiny_base_model.name
    dpo = load_dataset(str(build / "data" / "dpo"), split="train")
    assert dpo.features == features(DPO_FEATURES)
    counts = manifest["views"]["dpo"]
    assert counts["rows"] == len(dpo) == len(rows) and counts["dropped_tie"] == 0
    by_uuid = {r["uuid"]: r for r in rows}
    for d in dpo:
        row = by_uuid[d["uuid"]]
        assert d["score_chosen"] >= d["score_rejected"] and d["margin"] >= 0
        assert d["tie"] == (row["score"] == row["score_base"])
        chosen = row["response_base"] if d["chosen_from"] == "base" else row["response"]
        assert d["chosen"] == [{"role": "assistant", "content": chosen}]
    assert len(table(build, "sft")) == len(rows)


@pytest.mark.slow
def test_malformed_judge_verdicts_are_counted_not_fatal(
    cli, tiny_model, tiny_base_model, tmp_path, monkeypatch
) -> None:
    # The tiny model cannot write JSON: every verdict is malformed.
    scorer = (
        f'[scorer]\nname = "judge"\n[scorer.engine]\nname = "transformers"\nmodel = "{tiny_model}"'
    )
    build, sent = run_ultra(
        cli, tmp_path, monkeypatch, rows=3, instruct=tiny_model, base=tiny_base_model, scorer=scorer
    )
    rows = table(build)
    assert rows
    judged = [s for s in sent if "impartial judge" in s["prompt"]]
    assert len(judged) == 2 * len(rows)  # both orders of every pair
    for r in rows:
        assert r["score"] is None and r["score_error"] == "unparseable_judge_output"
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["views"]["dpo"] == {
        "rows": 0,
        "dropped_tie": 0,
        "dropped_missing_score": len(rows),
        "by_convention": 0,
    }


@pytest.mark.slow
@pytest.mark.embedded
def test_embedded_model_as_instruct_base_and_judge(cli, embedded_model, tmp_path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        """
recipe = "magpie-ultra"
num_rows = 3
seed = 3
batch_size = 3
[instruction]
max_new_tokens = 64
[response]
max_new_tokens = 64
[base]
max_new_tokens = 64
[scorer]
name = "judge"
mode = "pairwise"
max_new_tokens = 16
[scorer.engine]
name = "llamacpp"
model = "embedded:smollm2"
""",
    )
    result = cli("generate", str(config), "--out", str(tmp_path / "b"), "--quiet")
    assert result.exit_code == 0, result.stderr
    rows = table(tmp_path / "b")
    assert rows
    for r in rows:
        assert r["response"] and r["response_base"] and r["model_base"] == r["model"]
        # llama.cpp's JSON grammar makes every verdict parse
        assert r["score_error"] is None and r["score"] + r["score_base"] == 1.0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["views"]["dpo"]["dropped_missing_score"] == 0


def test_a_plugin_scorer_runs_in_the_pipeline(cli, with_plugins, tmp_path) -> None:
    """The example plugin's `length` scorer, on its instant `echo` engine for both models."""
    config = write_config(
        tmp_path / "c.toml",
        'recipe = "magpie-ultra"\nnum_rows = 4\nbatch_size = 2\n'
        '[engine]\nname = "echo"\nmodel = "i"\n[base_engine]\nname = "echo"\nmodel = "b"\n'
        '[scorer]\nname = "length"\n[dpo]\non_tie = "keep"\n',
    )
    result = cli("generate", str(config), "--out", str(tmp_path / "b"), "--quiet")
    assert result.exit_code == 0, result.stderr
    rows = table(tmp_path / "b")
    assert len(rows) == 4
    for r in rows:
        assert r["scorer"] == "length" and r["score"] == len(r["response"])
        assert r["model_base"] == "echo/b"
    from magpie_hub.release.tree import stage_release

    tree = stage_release(tmp_path / "b", tmp_path / "rel", repo_id="a/b")
    assert list(tree.configs) == ["default", "dpo", "sft"]
    assert "## Pairs and preferences" in tree.card and "Scorer: `length`" in tree.card


def test_an_unknown_scorer_is_named_with_the_choices(cli, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", 'recipe = "magpie-ultra"\n[scorer]\nname = "nope"\n')
    result = cli("generate", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "nope" in result.stderr and "reward-model" in result.stderr


@pytest.mark.slow
@pytest.mark.embedded
def test_multi_turn_pairs_answer_the_last_user_turn_with_its_history(
    cli, embedded_model, tmp_path, monkeypatch
) -> None:
    config = write_config(
        tmp_path / "c.toml",
        """
recipe = "magpie-ultra"
num_rows = 3
seed = 5
turns = 2
[instruction]
max_new_tokens = 64
[response]
max_new_tokens = 48
[base]
max_new_tokens = 48
""",
    )
    log = tmp_path / "prompts.jsonl"
    monkeypatch.setenv("MAGPIE_HUB_LOG_PROMPTS", str(log))
    result = cli("generate", str(config), "--out", str(tmp_path / "b"), "--quiet")
    assert result.exit_code == 0, result.stderr
    build = tmp_path / "b"
    rows = table(build)
    assert rows, json.loads((build / "manifest.json").read_text())["counts"]
    base_prompts = [
        json.loads(line)["prompt"]
        for line in log.read_text().splitlines()
        if "# Answer:" in json.loads(line)["prompt"]
    ]
    assert base_prompts and all(find_chat_tokens(p) == [] for p in base_prompts)
    for r in rows:
        users = [m["content"] for m in r["conversation"] if m["role"] == "user"]
        assert r["num_turns"] == 2 and r["instruction"] == users[-1]
        assert r["conversation"][-1] == {"role": "assistant", "content": r["response"]}
        first_answer = r["conversation"][-3]["content"]
        # the base model saw the first exchange as a Query/Answer pair, then the last turn
        expected = f"# Query:\n```{users[0]}```\n\n# Answer:\n```\n{first_answer}\n```\n\n"
        expected += f"# Query:\n```{users[1]}```\n\n# Answer:\n```\n"
        assert any(p.endswith(expected) for p in base_prompts)
    dpo = table(build, "dpo")
    assert dpo and all(d["by_convention"] and d["prompt"][-1]["role"] == "user" for d in dpo)
