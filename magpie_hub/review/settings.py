"""Argilla settings and records for the built-in recipes (used through `register_review_specs`).

A single-response build shows the conversation: quality of the instruction, a corrected
response (pre-filled with the answer), the category. A pair build (`magpie-ultra`) is a
blind comparison: the two answers are shown as A and B in a per-record order seeded by
the push (`ab_order`, kept in hidden metadata), each rated, then the preferred one.
Machine labels (judge tags, the scorer's choice) are hidden from reviewers unless
`ReviewOptions.suggestions` is set.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from magpie_hub.curate.labels import CATEGORIES
from magpie_hub.registry import ReviewOptions
from magpie_hub.review import guidelines as text
from magpie_hub.review.agreement import machine_labels

PREFERRED = ["A", "B", "tie"]
ANSWERS = ("response", "response_base")
SCORES = ("score", "score_base", "score_difference")


def _vectors(rows: list[dict[str, Any]]) -> list[Any]:
    import argilla as rg

    first = next((r.get("embedding") for r in rows if r.get("embedding")), None)
    return [rg.VectorField(name="embedding", dimensions=len(first))] if first else []


TAG_TERMS = ("input_quality", "difficulty", "task_category", "language", "safety")
TAG_NUMBERS = {"instruct_reward": float, "min_neighbor_distance": float, "repeat_count": int}
"""Curation tags (`magpie-hub curate`) sent as metadata, filterable in Argilla's UI."""


def _tag_properties(rows: list[dict[str, Any]], visible: bool) -> list[Any]:
    """Metadata properties for the tag columns the rows have."""
    import argilla as rg

    present = set(rows[0]) if rows else set()
    props: list[Any] = [
        rg.TermsMetadataProperty(name=n, visible_for_annotators=visible)
        for n in TAG_TERMS
        if n in present
    ]
    for name, kind in TAG_NUMBERS.items():
        if name in present:
            cls = rg.FloatMetadataProperty if kind is float else rg.IntegerMetadataProperty
            props.append(cls(name=name, visible_for_annotators=visible))
    return props


def _tag_metadata(row: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {n: row[n] for n in TAG_TERMS if row.get(n) is not None}
    for name, kind in TAG_NUMBERS.items():
        value = row.get(name)
        if value is not None and math.isfinite(float(value)):
            meta[name] = kind(value)
    return meta


def _tag_suggestions(row: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """The judge's quality and category, pre-filled for reviewers to confirm or change."""
    labels = machine_labels(row)
    out = []
    if "quality" in labels:
        out.append(("quality", labels["quality"], row.get("quality_generator") or "judge"))
    if labels.get("category") in CATEGORIES:
        agent = row.get("task_category_generator") or "judge"
        out.append(("category", labels["category"], agent))
    return out


def ab_order(uuid: str, seed: int) -> str:
    """Which answer is shown as A: "response" or "response_base" (stable per uuid and seed)."""
    digest = hashlib.sha256(f"{seed}:{uuid}".encode()).digest()
    return ANSWERS[digest[0] & 1]


def _rating(name: str, title: str, description: str) -> Any:
    import argilla as rg

    return rg.RatingQuestion(
        name=name, title=title, description=description, values=[1, 2, 3, 4, 5]
    )


def _common_questions(correction: str) -> list[Any]:
    import argilla as rg

    return [
        rg.TextQuestion(
            name="corrected_response",
            title="Corrected response",
            description=correction,
            required=False,
            use_markdown=True,
        ),
        rg.LabelQuestion(
            name="category",
            title="Category",
            description=text.CATEGORY_DESCRIPTION,
            labels=CATEGORIES,
            required=False,
        ),
    ]


def _settings(
    fields: list[Any],
    questions: list[Any],
    rows: list[dict[str, Any]],
    options: ReviewOptions,
    guidelines: str,
    pair: bool,
) -> Any:
    import argilla as rg

    visible = options.suggestions  # machine labels as metadata would anchor reviewers too
    hidden = [rg.FloatMetadataProperty(name=n, visible_for_annotators=visible) for n in SCORES]
    if pair:
        hidden.append(rg.TermsMetadataProperty(name="ab_order", visible_for_annotators=False))
    return rg.Settings(
        guidelines=guidelines,
        fields=fields,
        questions=[
            _rating("quality", "Instruction quality", text.QUALITY_DESCRIPTION),
            *questions,
        ],
        metadata=[
            rg.TermsMetadataProperty(name="system_prompt_key"),
            rg.IntegerMetadataProperty(name="instruction_length"),
            rg.IntegerMetadataProperty(name="response_length"),
            rg.IntegerMetadataProperty(name="num_turns"),
            *(hidden if pair else []),
            *_tag_properties(rows, visible),
        ],
        vectors=_vectors(rows),
        distribution=rg.TaskDistribution(min_submitted=options.min_submitted),
    )


def single_settings(rows: list[dict[str, Any]], options: ReviewOptions) -> Any:
    """The conversation; quality, a corrected response (pre-filled), the category."""
    import argilla as rg

    fields = [rg.ChatField(name="conversation", title="Conversation")]
    questions = _common_questions(text.CORRECTION_SINGLE)
    return _settings(fields, questions, rows, options, text.single_guidelines(options), False)


def pair_settings(rows: list[dict[str, Any]], options: ReviewOptions) -> Any:
    """The prompt and answers A and B; quality, a rating for each, the preferred one."""
    import argilla as rg

    fields = [
        rg.ChatField(name="prompt", title="Instruction"),
        rg.TextField(name="answer_a", title="Answer A", use_markdown=True),
        rg.TextField(name="answer_b", title="Answer B", use_markdown=True),
    ]
    questions = [
        _rating("rating_a", "Answer A", text.ANSWER_DESCRIPTION),
        _rating("rating_b", "Answer B", text.ANSWER_DESCRIPTION),
        rg.LabelQuestion(
            name="preferred",
            title="Preferred answer",
            description=text.PREFERRED_DESCRIPTION,
            labels=PREFERRED,
        ),
        *_common_questions(text.CORRECTION_PAIR),
    ]
    return _settings(fields, questions, rows, options, text.pair_guidelines(options), True)


def _metadata(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    meta = {
        "system_prompt_key": row.get("system_prompt_key") or "none",
        "instruction_length": len(row.get("instruction") or ""),
        "response_length": len(row.get("response") or ""),
        "num_turns": int(row.get("num_turns") or 1),
    }
    for name in names:
        value = row.get(name)
        if isinstance(value, float) and math.isfinite(value):
            meta[name] = value
    return {**meta, **_tag_metadata(row)}


def single_record(row: dict[str, Any], options: ReviewOptions) -> dict[str, Any]:
    last = row["conversation"][-1] if row.get("conversation") else {}
    prefill = [("corrected_response", last["content"], "response")] if last.get("content") else []
    return {
        "id": row["uuid"],
        "fields": {"conversation": row["conversation"]},
        "metadata": _metadata(row, ()),
        "vectors": {"embedding": row["embedding"]} if row.get("embedding") else {},
        "suggestions": [*prefill, *(_tag_suggestions(row) if options.suggestions else [])],
    }


def pair_record(row: dict[str, Any], options: ReviewOptions) -> dict[str, Any]:
    """A blind pair: answer A is `ab_order`'s column, B the other one."""
    a = ab_order(row["uuid"], options.seed)
    b = ANSWERS[1 - ANSWERS.index(a)]
    suggestions = []
    better = machine_labels(row).get("preferred", "tie")
    if options.suggestions and better != "tie":
        suggestions.append(("preferred", "A" if better == a else "B", row["scorer"]))
    metadata = _metadata(row, SCORES)
    return {
        "id": row["uuid"],
        "fields": {"prompt": row["conversation"][:-1], "answer_a": row[a], "answer_b": row[b]},
        "metadata": {**metadata, "ab_order": a},
        "vectors": {"embedding": row["embedding"]} if row.get("embedding") else {},
        "suggestions": [*suggestions, *(_tag_suggestions(row) if options.suggestions else [])],
    }
