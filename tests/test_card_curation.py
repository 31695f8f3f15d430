"""The card's curation sections: every number recomputed from the staged release's Parquet."""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from curate_helpers import generated_manifest, make_build
from datasets import Features, Sequence, Value
from magpie_hub_plugins.card_curation import verb_object, words

from magpie_hub.build import BuildFolder
from magpie_hub.curate.labels import CATEGORIES, DIFFICULTY, QUALITY, SAFETY
from magpie_hub.registry import View
from magpie_hub.release.tree import stage_release

N = 60
INSTRUCTIONS = [
    "Write a short poem about the sea at night.",
    "Can you explain the theory of relativity?",
    "How do I sort a list of numbers in Python?",
    "List three healthy breakfast ideas:",
    "What is the capital city of France?",
    "Please summarize the plot of Hamlet.",
    "Explain photosynthesis to a child.",
    "Give me a recipe for pancakes.",
    "Translate 'good morning' into German.",
    "Tell me about the Roman Empire.",
    "Why is the sky blue?",
    "Create a workout plan for beginners.",
    "Describe the water cycle.",
    "Generate ten names for a coffee shop.",
    "Could you help me with my resume?",
    "Compare Python and Rust for web servers.",
    "Suggest a good book on statistics.",
    "Design a logo for a bakery.",
    "Calculate the area of a circle of radius 3.",
    "Is it safe to eat raw eggs?",
    "Who wrote Pride and Prejudice?",
    "Find the bug in this code: print(1/0)",
    "Rewrite this sentence in the passive voice.",
    "Analyze the sales data below.",
    "Hello! How are you today?",
]
JUDGE = {
    "id": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "engine": "llamacpp",
    "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "sha256": "ab" * 32,
}
FEATURES = Features(
    {
        "uuid": Value("string"),
        "instruction": Value("string"),
        "response": Value("string"),
        "input_quality": Value("string"),
        "difficulty": Value("string"),
        "task_category": Value("string"),
        "other_task_category": Sequence(Value("string")),
        "language": Value("string"),
        "safety": Value("string"),
        "instruct_reward": Value("float64"),
        "reward_model": Value("string"),
        "min_neighbor_distance": Value("float64"),
        "repeat_count": Value("int64"),
        "min_similar_uuid": Value("string"),
    }
)
LANGUAGES = ["EN"] * 6 + ["FR", "DE", "ES", "IT", "PT", "NL", "PL", "RU", "ZH", "JA", "KO"]


def curated_build(root: Path) -> Path:
    """A finished, curated build with hand-written tags and a `filtered` view."""
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for i in range(N):
        first = i - i % 10 if i % 10 in (1, 2) else i  # rows 1, 2 copy row 0; 11, 12 row 10 ...
        rows.append(
            {
                "uuid": f"row-{i:04d}",
                "instruction": INSTRUCTIONS[(first * 7) % len(INSTRUCTIONS)],
                "response": "An answer. " * (1 + i % 5),
                "input_quality": None if i < 3 else rng.choice(QUALITY),
                "difficulty": rng.choice(DIFFICULTY),
                "task_category": rng.choice(CATEGORIES[:9]),
                "other_task_category": [],
                "language": rng.choice(LANGUAGES),
                "safety": rng.choice(["safe"] * 5 + ["unsafe"]),
                "instruct_reward": None if i == 5 else round(rng.uniform(-5, 5), 4),
                "reward_model": "test/reward-model",
                "min_neighbor_distance": 0.0 if i % 10 < 3 else 1.5,
                "repeat_count": 2 if i % 10 < 3 else 0,
                "min_similar_uuid": f"row-{first:04d}",
            }
        )
    folder = BuildFolder(root)
    folder.write_shards(pa.Table.from_pylist(rows, schema=FEATURES.arrow_schema))
    deduped = [r for r in rows if r["min_similar_uuid"] == r["uuid"]]
    good = [r for r in deduped if r["input_quality"] in ("good", "excellent")]
    folder.write_views({"filtered": View(good, FEATURES, {})})
    funnel = [
        {"step": step, "rows_after": len(kept), "removed": before - len(kept)}
        for step, kept, before in (
            ("curated rows", rows, N),
            ("min_similar_uuid first_of_group", deduped, N),
            ("input_quality >= good", good, len(deduped)),
        )
    ]
    taggers = {
        "quality": (["input_quality"], {"invalid JSON": 3}),
        "difficulty": (["difficulty"], {}),
        "category": (["task_category", "other_task_category"], {}),
        "language": (["language"], {}),
        "safety": (["safety"], {}),
        "reward": (["instruct_reward", "reward_model"], {}),
        "near_dup": (["min_neighbor_distance", "repeat_count", "min_similar_uuid"], {}),
    }
    folder.write_manifest(
        {
            **generated_manifest(N),
            "views": {"filtered": {"rows": len(good)}},
            "data_files": folder.data_files(),
            "curate": {
                "taggers": {
                    name: {
                        "columns": cols,
                        "errors_by_reason": errors,
                        "tagged": N - sum(errors.values()),
                        "plugin": "taggers",
                    }
                    for name, (cols, errors) in taggers.items()
                },
                "judge": JUDGE,
                "config": {"near_dup": {"threshold": 0.05}},
                "rows": N,
            },
            "filter": {
                "preset": "magpie-300k",
                "rules": [],
                "top_n": None,
                "shuffle_seed": None,
                "funnel": funnel,
            },
        }
    )
    return root


def section(card: str, title: str) -> str:
    """The body of the card's `## title` section."""
    start = card.index(f"\n## {title}\n")
    end = card.find("\n## ", start + 1)
    return card[start:end]


def card_table(text: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def parquet_rows(tree: Path, config: str) -> list[dict[str, Any]]:
    files = sorted((tree / "data" / config).glob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def pct(n: int, total: int) -> str:
    return f"{n / total:.1%}"


def counted(values: list[Any], order: list[str]) -> list[list[str]]:
    counts = Counter(values)
    rows = [[k, str(counts[k]), pct(counts[k], len(values))] for k in order]
    if counts[None]:
        rows.append(["(untagged)", str(counts[None]), pct(counts[None], len(values))])
    return rows


def test_curation_sections_match_the_staged_parquet(tmp_path: Path) -> None:
    release = stage_release(curated_build(tmp_path / "b"), tmp_path / "r")
    tree, card = release.root, release.card
    rows = parquet_rows(tree, "default")
    manifest = json.loads((tree / "manifest.json").read_text())
    assert len(rows) == N
    assert card.index("## Statistics") < card.index("## Curation") < card.index("## Filter funnel")
    assert card.index("## Filter funnel") < card.index("## Instruction diversity")

    text = section(card, "Curation")
    taggers = manifest["curate"]["taggers"]
    expected_taggers = []
    for name, t in taggers.items():
        errors = ", ".join(f"{k}: {n}" for k, n in t["errors_by_reason"].items()) or "-"
        expected_taggers.append([name, ", ".join(t["columns"]), str(t["tagged"]), errors])
    assert card_table(text, "| tagger |") == expected_taggers
    assert taggers["quality"]["errors_by_reason"] == {"invalid JSON": 3}
    assert "come from the model `HuggingFaceTB/SmolLM2-135M-Instruct`" in text
    assert "weak judge" in text and "(quality, difficulty, category, safety)" in text
    for column, labels in (
        ("input_quality", QUALITY),
        ("difficulty", DIFFICULTY),
        ("task_category", CATEGORIES),
        ("safety", SAFETY),
    ):
        assert card_table(text, f"| {column} | rows |") == counted(
            [r[column] for r in rows], labels
        )
    langs = Counter(r["language"] for r in rows)
    top = sorted(langs, key=lambda k: (-langs[k], k))[:10]
    assert f"(top 10 of {len(langs)})" in text
    assert card_table(text, "| language | rows |") == counted([r["language"] for r in rows], top)

    rewards = [r["instruct_reward"] for r in rows if r["instruct_reward"] is not None]
    summary = [statistics.fmean(rewards), min(rewards), max(rewards)]
    assert card_table(text, "| reward column |") == [
        ["instruct_reward", str(len(rewards)), *(f"{x:.3f}" for x in summary)]
    ]
    assert "`test/reward-model`" in text
    later = sum(r["min_similar_uuid"] != r["uuid"] for r in rows)
    grouped = sum(r["repeat_count"] > 0 for r in rows)
    assert [r[1:] for r in card_table(text, "| near-duplicates |")] == [
        [str(later), pct(later, N)],
        [str(grouped), pct(grouped, N)],
    ]
    assert "below 0.05" in text
    for image in ("images/task-categories.png", "images/instruct-reward.png"):
        assert f"]({image})" in text
        assert (tree / image).read_bytes().startswith(b"\x89PNG")

    text = section(card, "Filter funnel")
    funnel = manifest["filter"]["funnel"]
    steps = [[s["step"], str(s["rows_after"]), str(s["removed"])] for s in funnel]
    assert card_table(text, "| step |") == steps
    filtered = parquet_rows(tree, "filtered")
    assert funnel[-1]["rows_after"] == len(filtered) > 0
    assert f"Config `filtered` holds {len(filtered)} rows" in text
    assert "preset `magpie-300k`" in text

    text = section(card, "Instruction diversity")
    texts = [r["instruction"] for r in rows]
    leads = Counter(words(t)[0] for t in texts)
    assert f"{len(leads)} distinct leading words in {N} instructions" in text
    expected = sorted(leads.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    assert card_table(text, "| leading word |") == [[w, str(n), pct(n, N)] for w, n in expected]
    pairs = Counter(p for p in map(verb_object, texts) if p)
    assert f"Verb-object pairs of {sum(pairs.values())} instructions" in text
    expected_pairs = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    assert card_table(text, "| verb | object |") == [[v, o, str(n)] for (v, o), n in expected_pairs]
    assert len(leads) > 20 and len(expected_pairs) > 5  # both tables were cut and non-trivial


def test_verb_object_heuristic() -> None:
    assert words("Don't translate 'good morning'!") == ["don't", "translate", "good", "morning"]
    assert verb_object("Write a short poem about the sea.") == ("write", "poem")
    assert verb_object("How do I sort a list of numbers?") == ("sort", "list")
    assert verb_object("Can you please explain the theory?") == ("explain", "theory")
    assert verb_object("Give me three ideas for dinner") == ("give", "ideas")
    assert verb_object("List 3 healthy breakfasts:") == ("list", "breakfasts")
    assert verb_object("What is the capital of France?") is None
    assert verb_object("Hello! How are you?") is None
    assert verb_object("Explain.") is None


def test_rendering_twice_gives_the_same_card_and_images(tmp_path: Path) -> None:
    build = curated_build(tmp_path / "b")
    one = stage_release(build, tmp_path / "one")
    two = stage_release(build, tmp_path / "two")
    assert one.card == two.card
    images = [f for f in one.files if f.endswith(".png")]
    assert "images/task-categories.png" in images and images == [
        f for f in two.files if f.endswith(".png")
    ]
    for image in images:
        assert (one.root / image).read_bytes() == (two.root / image).read_bytes(), image


def uncurated_build(root: Path, **extra: Any) -> Path:
    """make_build's build, with the `config` a generated build's manifest has."""
    folder = BuildFolder(make_build(root, **extra))
    folder.write_manifest({**folder.complete_manifest(), **generated_manifest(8)})
    return root


def test_an_uncurated_card_has_no_curation_sections(tmp_path: Path) -> None:
    release = stage_release(uncurated_build(tmp_path / "b"), tmp_path / "r")
    for title in ("Curation", "Filter funnel", "Instruction diversity"):
        assert f"## {title}\n" not in release.card
    assert not any("task-categories" in f or "instruct-reward" in f for f in release.files)


def test_a_curation_without_judge_or_filter(tmp_path: Path) -> None:
    build = uncurated_build(tmp_path / "b", language=["EN"] * 7 + ["FR"])
    folder = BuildFolder(build)
    manifest = folder.complete_manifest()
    manifest["curate"] = {
        "taggers": {"language": {"columns": ["language"], "errors_by_reason": {}, "tagged": 8}},
        "judge": None,
        "config": {},
        "rows": 8,
    }
    folder.write_manifest(manifest)
    card = stage_release(build, tmp_path / "r").card
    text = section(card, "Curation")
    assert "No judge model ran" in text
    assert card_table(text, "| language | rows |") == [["EN", "7", "87.5%"], ["FR", "1", "12.5%"]]
    assert "## Filter funnel\n" not in card and "task-categories.png" not in card
    assert "## Instruction diversity\n" in card
