"""Curation's pure parts: judge prompts and parsing, near-duplicate groups, filter rules."""

from __future__ import annotations

import numpy as np
import pytest

from magpie_hub.config import FilterConfig, FilterRule
from magpie_hub.curate.filters import PRESETS, apply_filter, plan_filter
from magpie_hub.curate.judge import JUDGE_TASKS, parse_guard
from magpie_hub.curate.labels import CATEGORIES, DIFFICULTY, QUALITY
from magpie_hub.curate.neardup import neighbours
from magpie_hub.errors import ConfigError, UnknownNameError

# magpie-facts sections 5 and 7, as published.
FACT_KEYS = {
    "difficulty": {"intent", "knowledge", "difficulty"},
    "quality": {"explanation", "input_quality"},
    "category": {"primary_tag", "other_tags"},
}


def test_judge_prompts_keys_and_labels_equal_the_facts() -> None:
    assert DIFFICULTY == ["very easy", "easy", "medium", "hard", "very hard"]
    assert QUALITY == ["very poor", "poor", "average", "good", "excellent"]
    assert CATEGORIES[-1] == "Others" and len(CATEGORIES) == 12
    for name, keys in FACT_KEYS.items():
        task = JUDGE_TASKS[name]
        assert set(task.schema["properties"]) == keys
        assert set(task.schema["required"]) == keys
        prompt = task.render("What is 2 + 2?")
        assert "```\nWhat is 2 + 2?\n```" in prompt  # the query in a fenced block
        for key in keys:
            assert f'"{key}"' in prompt  # the JSON skeleton names every key
    props = {n: t.schema["properties"] for n, t in JUDGE_TASKS.items()}
    assert props["difficulty"]["difficulty"]["enum"] == DIFFICULTY
    assert props["quality"]["input_quality"]["enum"] == QUALITY
    assert props["category"]["primary_tag"]["enum"] == CATEGORIES
    assert props["category"]["other_tags"]["items"]["enum"] == CATEGORIES


@pytest.mark.parametrize(
    ("task", "answer", "finish", "expected"),
    [
        (
            "quality",
            '{"explanation": "Clear.", "input_quality": "good"}',
            "stop",
            {"input_quality": "good", "quality_explanation": "Clear.", "_error": None},
        ),
        (  # lenient: prose around it, label case, a missing closing brace
            "quality",
            'Sure! {"explanation": "Vague.", "input_quality": "Poor"',
            "stop",
            {"input_quality": "poor", "quality_explanation": "Vague.", "_error": None},
        ),
        ("quality", "I think it is good.", "stop", {"_error": "no_json"}),
        ("quality", '{"explanation": "x", "input_qual', "length", {"_error": "truncated"}),
        (
            "quality",
            '{"explanation": "x", "input_quality": "great"}',
            "stop",
            {"_error": "bad_input_quality"},
        ),
        ("quality", None, None, {"_error": "engine_error"}),
        (
            "category",
            '{"primary_tag": "Others", "other_tags": ["Math", "Nonsense", "Math"]}',
            "stop",
            {"task_category": "Others", "other_task_category": ["Math"], "_error": None},
        ),
        (
            "category",
            '{"primary_tag": "Other", "other_tags": []}',
            "stop",
            {"_error": "bad_primary_tag"},
        ),
        (
            "difficulty",
            '{"intent": "The user wants to add.", "knowledge": "Sums.", "difficulty": "very easy"}',
            "stop",
            {"difficulty": "very easy", "intent": "The user wants to add.", "_error": None},
        ),
        (
            "difficulty",
            '{"intent": "", "knowledge": "k", "difficulty": "easy"}',
            "stop",
            {"_error": "bad_intent"},
        ),
    ],
)
def test_judge_answers_parse_or_count_a_reason(task, answer, finish, expected) -> None:
    parsed = JUDGE_TASKS[task].parse(answer, finish)
    for key, value in expected.items():
        assert parsed[key] == value
    if expected["_error"]:  # a failed answer leaves every column null
        assert all(v is None for k, v in parsed.items() if k != "_error")


@pytest.mark.parametrize(
    ("answer", "safety", "hazard", "error"),
    [
        ("safe", "safe", None, None),
        ("\n\nunsafe\nS1,S10", "unsafe", "S1", None),
        ("Unsafe\nS99", "unsafe", None, None),
        ("I cannot tell.", None, None, "no_verdict"),
        (None, None, None, "engine_error"),
    ],
)
def test_guard_answers(answer, safety, hazard, error) -> None:
    assert parse_guard(answer) == {"safety": safety, "hazard_category": hazard, "_error": error}


def _unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("ivf_above", [10_000, 50])
def test_near_duplicates_keep_exactly_one_per_group(ivf_above: int) -> None:
    rng = np.random.default_rng(1)
    base = _unit(rng, 200)
    vectors = base.copy()
    vectors[10] = vectors[3]  # exact duplicate
    vectors[11] = vectors[3]  # and another: a group of three
    noise = _unit(rng, 1)[0] * 0.05
    vectors[50] = (vectors[40] + noise) / np.linalg.norm(vectors[40] + noise)  # near duplicate
    found = neighbours(vectors, 0.05, ivf_above=ivf_above, nprobe=64)
    assert found.index == ("flat" if ivf_above > 200 else "ivf")
    groups: dict[int, list[int]] = {}
    for i, root in enumerate(found.group_root):
        groups.setdefault(int(root), []).append(i)
    dup_groups = sorted(g for g in groups.values() if len(g) > 1)
    assert dup_groups == [[3, 10, 11], [40, 50]]
    survivors = [i for i in range(200) if found.group_root[i] == i]
    assert len(survivors) == 200 - 3  # one survivor per group, the earliest
    assert {3, 40} <= set(survivors) and not {10, 11, 50} & set(survivors)
    assert found.repeat_count[3] == 2 and found.repeat_count[11] == 2
    assert found.min_distance[10] == 0.0
    assert 0 < found.min_distance[50] < 0.05


def test_no_duplicates_lose_nothing() -> None:
    vectors = _unit(np.random.default_rng(2), 300)
    found = neighbours(vectors, 0.05)
    assert list(found.group_root) == list(range(300))
    assert int(found.repeat_count.sum()) == 0
    assert np.all(found.min_distance > 0.05)


def _row(i: int, quality, difficulty, reward, similar):  # type: ignore[no-untyped-def]
    return {
        "uuid": f"u{i}",
        "instruction": f"question {i}?",
        "response": "x" * (10 + i),
        "input_quality": quality,
        "difficulty": difficulty,
        "instruct_reward": reward,
        "min_similar_uuid": similar,
    }


FIXTURE = [
    _row(0, "excellent", "hard", 1.0, "u0"),
    _row(1, "good", "easy", -4.0, "u1"),
    _row(2, "average", "medium", -9.0, "u2"),
    _row(3, "poor", "very easy", 5.0, "u3"),
    _row(4, "good", "medium", -12.0, "u4"),
    _row(5, "excellent", "very easy", 0.0, "u0"),
    _row(6, None, None, None, "u6"),
    _row(7, "good", "hard", -10.0, "u7"),
]
FIXTURE[7]["instruction"] = "List these:"
COLUMNS = {c: None for c in FIXTURE[0]}

# Hand-computed from the published rules (magpie-facts section 7).
EXPECTED = {
    "magpie-300k": ["u0", "u1", "u2"],  # u3 poor, u4 reward, u5 duplicate, u6 untagged, u7 ':'
    "magpie-notebook": ["u0", "u1"],  # u2 average is out; u7 reward -10 is not > -10
    "magpie-mt": ["u0", "u1", "u4", "u7"],  # quality >= good and difficulty >= easy
    "magpie-dpo": ["u0"],  # difficulty >= medium, quality >= good, reward >= -5
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_selects_exactly_its_rows(preset: str) -> None:
    plan = plan_filter(FilterConfig(preset=preset), COLUMNS)
    kept, funnel = apply_filter(FIXTURE, plan)
    assert sorted(r["uuid"] for r in kept) == EXPECTED[preset]
    assert funnel[0]["rows_after"] == len(FIXTURE)
    assert funnel[-1]["rows_after"] == len(kept)
    assert sum(step["removed"] for step in funnel) == len(FIXTURE) - len(kept)


def test_top_n_keeps_the_longest_responses_and_shuffle_is_seeded() -> None:
    cfg = FilterConfig(top_n=3, shuffle_seed=42)
    kept, funnel = apply_filter(FIXTURE, plan_filter(cfg, COLUMNS))
    assert sorted(r["uuid"] for r in kept) == ["u5", "u6", "u7"]
    again, _ = apply_filter(FIXTURE, plan_filter(cfg, COLUMNS))
    assert [r["uuid"] for r in kept] == [r["uuid"] for r in again]
    assert funnel[-1]["step"] == "top 3 longest responses"


def test_rule_on_a_missing_tag_names_the_tagger_to_add() -> None:
    cfg = FilterConfig(rules=[FilterRule(column="input_quality", op=">=", value="good")])
    with pytest.raises(ConfigError, match="no column 'input_quality'") as info:
        plan_filter(cfg, {"uuid": None, "instruction": None})
    assert "quality" in (info.value.hint or "")


def test_rule_with_an_unknown_label_or_preset_is_refused() -> None:
    bad = FilterConfig(rules=[FilterRule(column="difficulty", op=">=", value="tricky")])
    with pytest.raises(ConfigError, match="'tricky' is not a label of 'difficulty'"):
        plan_filter(bad, COLUMNS)
    with pytest.raises(UnknownNameError, match="magpie-300k"):
        plan_filter(FilterConfig(preset="magpie-1m"), COLUMNS)


@pytest.mark.parametrize("ivf_above", [10_000, 50])
def test_blocks_find_what_one_array_finds(ivf_above: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from magpie_hub.curate import neardup

    monkeypatch.setattr(neardup, "QUERY_BATCH", 64)  # batches that span block edges
    monkeypatch.setattr(neardup, "ADD_BATCH", 100)
    rng = np.random.default_rng(3)
    vectors = _unit(rng, 300)
    vectors[250] = vectors[7]  # a duplicate in another block
    whole = neighbours(vectors, 0.05, ivf_above=ivf_above, nprobe=64)
    pieces = [vectors[:1], vectors[1:130], vectors[130:130], vectors[130:299], vectors[299:]]
    split = neighbours(pieces, 0.05, ivf_above=ivf_above, nprobe=64)
    assert split.index == whole.index == ("flat" if ivf_above > 300 else "ivf")
    assert split.group_root[250] == 7
    np.testing.assert_array_equal(split.group_root, whole.group_root)
    np.testing.assert_array_equal(split.repeat_count, whole.repeat_count)
    np.testing.assert_array_equal(split.min_distance, whole.min_distance)
