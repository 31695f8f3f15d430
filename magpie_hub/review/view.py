"""The `reviewed` view: a build's rows joined with their aggregated human reviews.

Review columns are prefixed `review_` and never replace a machine tag. Blind pairs are
mapped back here, once: answer A/B and rating_a/rating_b become the instruct (`response`)
and base (`response_base`) answers through the record's stored `ab_order`.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from magpie_hub.registry import View
from magpie_hub.review.agreement import majority

REVIEW_COLUMNS = {
    "review_count": "int64",
    "review_discarded": "bool",
    "review_quality_mean": "float64",
    "review_quality_majority": "int64",
    "review_better": "string",
    "review_better_agreement": "float64",
    "review_rating_instruct_mean": "float64",
    "review_rating_base_mean": "float64",
    "review_category": "string",
    "review_category_agreement": "float64",
}


def _unblind(question: str, value: Any, a_is: str | None) -> tuple[str, Any]:
    other = {"response": "response_base", "response_base": "response"}
    if question == "better":  # datasets pushed before blind pairs
        return "preferred", value
    if a_is not in other:
        return question, value
    if question == "preferred":
        return question, {"A": a_is, "B": other[a_is]}.get(value, value)
    if question in ("rating_a", "rating_b"):
        shown = a_is if question == "rating_a" else other[a_is]
        return ("rating_instruct" if shown == "response" else "rating_base"), value
    return question, value


def human_answers(responses: list[dict[str, Any]]) -> Iterator[tuple[str, str, str, Any]]:
    """(uuid, user, question, value) of every submitted answer, pairs unblinded."""
    for r in sorted(responses, key=lambda r: (r["uuid"], r["user"], r["question"])):
        if r["status"] == "submitted" and r["value"] not in (None, ""):
            question, value = _unblind(r["question"], r["value"], r.get("ab_order"))
            yield r["uuid"], r["user"], question, value


def _mean(values: list[Any]) -> float | None:
    return round(statistics.fmean(float(v) for v in values), 4) if values else None


def aggregate(responses: list[dict[str, Any]]) -> dict[str, Any]:
    """One row's responses (from every reviewer) as review columns."""
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in responses:
        by_user[r["user"]].append(r)
    discarded = sum(1 for rs in by_user.values() if all(r["status"] == "discarded" for r in rs))
    values: dict[str, list[Any]] = defaultdict(list)
    answers = []
    for _, user, question, value in human_answers(responses):
        values[question].append(value)
        answers.append({"user": user, "question": question, "value": json.dumps(value)})
    quality, _ = majority([int(v) for v in values.get("quality", [])])
    better, better_agreement = majority(values.get("preferred", []))
    category, category_agreement = majority(values.get("category", []))
    reviewers = {r["user"] for r in responses if r["status"] in ("submitted", "discarded")}

    return {
        "review_count": len(reviewers),
        "review_discarded": discarded > len(reviewers) - discarded,
        "review_quality_mean": _mean(values.get("quality", [])),
        "review_quality_majority": quality,
        "review_better": better,
        "review_better_agreement": better_agreement,
        "review_rating_instruct_mean": _mean(values.get("rating_instruct", [])),
        "review_rating_base_mean": _mean(values.get("rating_base", [])),
        "review_category": category,
        "review_category_agreement": category_agreement,
        "review_corrections": [str(v) for v in values.get("corrected_response", [])],
        "review_answers": answers,
    }


def reviewed_view(
    rows: Iterable[dict[str, Any]], responses: list[dict[str, Any]], features: Any
) -> View:
    """Rows that have at least one submitted or discarded review, with the review columns."""
    from datasets import Features, Sequence, Value

    by_uuid: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in responses:
        by_uuid[r["uuid"]].append(r)
    out = []
    for row in rows:
        review = aggregate(by_uuid.get(row["uuid"], []))
        if review["review_count"]:
            out.append({**row, **review})
    columns: dict[str, Any] = {name: Value(dtype) for name, dtype in REVIEW_COLUMNS.items()}
    columns["review_corrections"] = Sequence(Value("string"))
    columns["review_answers"] = [
        {"user": Value("string"), "question": Value("string"), "value": Value("string")}
    ]
    reviewers = len({r["user"] for r in responses})
    return View(out, Features({**features, **columns}), {"reviewers": reviewers})
