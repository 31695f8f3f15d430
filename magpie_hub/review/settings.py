"""Argilla settings and records for the built-in recipes (used through `register_review_specs`).

A single-response build shows the conversation; a pair build (`magpie-ultra`) shows the
prompt and both answers. Questions: quality (1-5), which answer is better (pairs), a
corrected response, the task category. Metadata: category, lengths, scores.
"""

from __future__ import annotations

import math
from typing import Any

from magpie_hub.curate.labels import CATEGORIES

BETTER = ["response", "response_base", "tie"]


def _vectors(rows: list[dict[str, Any]]) -> list[Any]:
    import argilla as rg

    first = next((r.get("embedding") for r in rows if r.get("embedding")), None)
    return [rg.VectorField(name="embedding", dimensions=len(first))] if first else []


TAG_TERMS = ("input_quality", "difficulty", "task_category", "language", "safety")
TAG_NUMBERS = {"instruct_reward": float, "min_neighbor_distance": float, "repeat_count": int}
"""Curation tags (`magpie-hub curate`) sent as metadata, filterable in Argilla's UI."""
QUALITY_RATING = {"very poor": 1, "poor": 2, "average": 3, "good": 4, "excellent": 5}


def _tag_properties(rows: list[dict[str, Any]]) -> list[Any]:
    """Metadata properties for the tag columns the rows have."""
    import argilla as rg

    present = set(rows[0]) if rows else set()
    props: list[Any] = [rg.TermsMetadataProperty(name=n) for n in TAG_TERMS if n in present]
    for name, kind in TAG_NUMBERS.items():
        if name in present:
            cls = rg.FloatMetadataProperty if kind is float else rg.IntegerMetadataProperty
            props.append(cls(name=name))
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
    out = []
    if row.get("input_quality") in QUALITY_RATING:
        agent = row.get("quality_generator") or "judge"
        out.append(("quality", QUALITY_RATING[row["input_quality"]], agent))
    if row.get("task_category") in CATEGORIES:
        out.append(
            ("category", row["task_category"], row.get("task_category_generator") or "judge")
        )
    return out


def _settings(fields: list[Any], pair: bool, rows: list[dict[str, Any]]) -> Any:
    import argilla as rg

    better = [rg.LabelQuestion(name="better", labels=BETTER)] if pair else []
    scores = ("score", "score_base", "score_difference") if pair else ()
    return rg.Settings(
        fields=fields,
        questions=[
            rg.RatingQuestion(name="quality", values=[1, 2, 3, 4, 5]),
            *better,
            rg.TextQuestion(name="corrected_response", required=False, use_markdown=True),
            rg.LabelQuestion(name="category", labels=CATEGORIES, required=False),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="system_prompt_key"),
            rg.IntegerMetadataProperty(name="instruction_length"),
            rg.IntegerMetadataProperty(name="response_length"),
            rg.IntegerMetadataProperty(name="num_turns"),
            *(rg.FloatMetadataProperty(name=name) for name in scores),
            *_tag_properties(rows),
        ],
        vectors=_vectors(rows),
    )


def single_settings(rows: list[dict[str, Any]]) -> Any:
    """The conversation; quality, a corrected response, the category."""
    import argilla as rg

    return _settings([rg.ChatField(name="conversation")], False, rows)


def pair_settings(rows: list[dict[str, Any]]) -> Any:
    """The prompt and both answers; quality, which is better, a correction, the category."""
    import argilla as rg

    fields = [
        rg.ChatField(name="prompt"),
        rg.TextField(name="response", use_markdown=True),
        rg.TextField(name="response_base", use_markdown=True),
    ]
    return _settings(fields, True, rows)


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


def single_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["uuid"],
        "fields": {"conversation": row["conversation"]},
        "metadata": _metadata(row, ()),
        "vectors": {"embedding": row["embedding"]} if row.get("embedding") else {},
        "suggestions": _tag_suggestions(row),
    }


def pair_record(row: dict[str, Any]) -> dict[str, Any]:
    """Fields and metadata of a pair; a suggestion for `better` when the scores differ."""
    suggestions = []
    diff = row.get("score_difference")
    if isinstance(diff, float) and diff != 0:
        suggestions.append(("better", "response" if diff > 0 else "response_base", row["scorer"]))
    return {
        "id": row["uuid"],
        "fields": {
            "prompt": row["conversation"][:-1],
            "response": row["response"],
            "response_base": row["response_base"],
        },
        "metadata": _metadata(row, ("score", "score_base", "score_difference")),
        "vectors": {"embedding": row["embedding"]} if row.get("embedding") else {},
        "suggestions": [*suggestions, *_tag_suggestions(row)],
    }
