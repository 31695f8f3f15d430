"""The `reviewed` view: a build's rows joined with their aggregated human reviews."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from magpie_hub.registry import View

REVIEW_COLUMNS = {
    "review_count": "int64",
    "review_discarded": "bool",
    "review_quality_mean": "float64",
    "review_better": "string",
    "review_better_agreement": "float64",
    "review_category": "string",
    "review_category_agreement": "float64",
}


def majority(values: list[Any]) -> tuple[Any, float | None]:
    """The most common value (ties: the first in sorted order) and its share of the votes."""
    if not values:
        return None, None
    counts = Counter(values)
    top = max(sorted(counts, key=str), key=lambda v: counts[v])
    return top, round(counts[top] / len(values), 4)


def aggregate(responses: list[dict[str, Any]]) -> dict[str, Any]:
    """One row's responses (from every reviewer) as review columns."""
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in responses:
        by_user[r["user"]].append(r)
    submitted = [r for r in responses if r["status"] == "submitted"]
    discarded = sum(1 for rs in by_user.values() if all(r["status"] == "discarded" for r in rs))
    values: dict[str, list[Any]] = defaultdict(list)
    for r in sorted(submitted, key=lambda r: r["user"]):
        if r["value"] not in (None, ""):
            values[r["question"]].append(r["value"])
    ratings = [float(v) for v in values.get("quality", [])]
    better, better_agreement = majority(values.get("better", []))
    category, category_agreement = majority(values.get("category", []))
    reviewers = {r["user"] for r in responses if r["status"] in ("submitted", "discarded")}
    return {
        "review_count": len(reviewers),
        "review_discarded": discarded > len(reviewers) - discarded,
        "review_quality_mean": round(statistics.fmean(ratings), 4) if ratings else None,
        "review_better": better,
        "review_better_agreement": better_agreement,
        "review_category": category,
        "review_category_agreement": category_agreement,
        "review_corrections": [str(v) for v in values.get("corrected_response", [])],
    }


def reviewed_view(
    rows: list[dict[str, Any]], responses: list[dict[str, Any]], features: Any
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
    columns = {name: Value(dtype) for name, dtype in REVIEW_COLUMNS.items()}
    columns["review_corrections"] = Sequence(Value("string"))
    return View(
        out, Features({**features, **columns}), {"reviewers": len({r["user"] for r in responses})}
    )
