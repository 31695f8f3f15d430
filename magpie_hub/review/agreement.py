"""How far reviewers agree with each other, and how far the machine labels agree with them.

Inter-annotator agreement is Krippendorff's alpha (interval metric for ratings, nominal for
labels) over the records that two or more people answered. Machine-vs-human compares the
judge's `input_quality` and `task_category` and the pair scorer's choice with the human
majority of each record: the share of exact matches, and alpha with the two as coders.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import permutations
from typing import Any

from magpie_hub.curate.labels import QUALITY_RATING

METRICS = {
    "quality": "interval",
    "rating_instruct": "interval",
    "rating_base": "interval",
    "preferred": "nominal",
    "category": "nominal",
}
"""The questions agreement is reported for (pairs already mapped from A/B), and how."""


def alpha(units: Iterable[list[Any]], metric: str = "nominal") -> float | None:
    """Krippendorff's alpha of the values coders gave each unit; None when undefined (fewer
    than two pairable values, or a single value used throughout)."""
    coincidence: dict[tuple[Any, Any], float] = defaultdict(float)
    for values in units:
        if len(values) < 2:
            continue
        for c, k in permutations(values, 2):
            coincidence[(c, k)] += 1 / (len(values) - 1)
    totals: dict[Any, float] = defaultdict(float)
    for (c, _), weight in coincidence.items():
        totals[c] += weight
    n = sum(totals.values())
    if n < 2:
        return None

    def delta(c: Any, k: Any) -> float:
        return float((c - k) ** 2) if metric == "interval" else float(c != k)

    observed = sum(w * delta(c, k) for (c, k), w in coincidence.items()) / n
    expected = sum(totals[c] * totals[k] * delta(c, k) for c in totals for k in totals)
    expected /= n * (n - 1)
    if expected == 0:
        return None
    return round(1 - observed / expected, 4)


def machine_labels(row: dict[str, Any]) -> dict[str, Any]:
    """The automatic labels of a row (or of a record's metadata) in the humans' terms."""
    out: dict[str, Any] = {}
    if row.get("input_quality") in QUALITY_RATING:
        out["quality"] = QUALITY_RATING[row["input_quality"]]
    if row.get("task_category"):
        out["category"] = row["task_category"]
    diff = row.get("score_difference")
    if isinstance(diff, int | float) and diff == diff:  # not NaN
        out["preferred"] = "response" if diff > 0 else "response_base" if diff < 0 else "tie"
    return out


def majority(values: list[Any]) -> tuple[Any, float | None]:
    """The most common value (ties: the first in sorted order) and its share of the votes."""
    if not values:
        return None, None
    counts = Counter(values)
    top = max(sorted(counts, key=str), key=lambda v: counts[v])
    return top, round(counts[top] / len(values), 4)


def report(
    answers: Iterable[tuple[str, str, str, Any]], machine: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Agreement from (uuid, user, question, value) answers and uuid -> machine labels."""
    votes: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for uuid, user, question, value in answers:
        if question in METRICS and value not in (None, ""):
            votes[question][uuid][user] = value
    between: dict[str, Any] = {}
    versus: dict[str, Any] = {}
    for question, metric in METRICS.items():
        per_record = [list(by_user.values()) for by_user in votes[question].values()]
        shared = [values for values in per_record if len(values) >= 2]
        if per_record:
            between[question] = {
                "alpha": alpha(shared, metric),
                "metric": metric,
                "records": len(shared),
                "answers": sum(len(v) for v in shared),
            }
        pairs = [
            (machine[uuid][question], majority(list(by_user.values()))[0])
            for uuid, by_user in votes[question].items()
            if question in machine.get(uuid, {})
        ]
        if pairs:
            versus[question] = {
                "agreement": round(sum(m == h for m, h in pairs) / len(pairs), 4),
                "alpha": alpha(([m, h] for m, h in pairs), metric),
                "rows": len(pairs),
            }
    return {"between_reviewers": between, "machine_vs_humans": versus}
