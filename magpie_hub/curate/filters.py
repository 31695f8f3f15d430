"""Filter rules and presets: the `filtered` view and its funnel (rows after each rule).

A rule keeps the rows where `column op value` holds; a null value never passes a
comparison. Ordered labels (`input_quality`, `difficulty`) compare by their order, so
`input_quality >= good` keeps good and excellent. After the rules: the `top_n` rows
with the longest responses (ties: build order), then an optional seeded shuffle.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from magpie_hub.config import FilterConfig, FilterRule
from magpie_hub.curate.labels import ORDERED, VOCABULARY
from magpie_hub.errors import ConfigError, UnknownNameError


def _rule(column: str, op: str, value: Any = None) -> FilterRule:
    return FilterRule(column=column, op=op, value=value)


NOT_DUPLICATE = _rule("min_similar_uuid", "first_of_group")
NO_COLON = _rule("instruction", "not_endswith", ":")


@dataclass(frozen=True)
class Preset:
    description: str
    rules: list[FilterRule]
    top_n: int | None = None
    shuffle_seed: int | None = None


PRESETS = {
    "magpie-300k": Preset(
        "Magpie-Pro/Air-300K-Filtered cards: quality >= average, reward >= -10, no "
        "repetitions, no trailing ':', then the 300K longest responses.",
        [
            _rule("input_quality", ">=", "average"),
            _rule("instruct_reward", ">=", -10),
            NOT_DUPLICATE,
            NO_COLON,
        ],
        top_n=300_000,
    ),
    "magpie-notebook": Preset(
        "The Qwen2 notebook: quality good or excellent, reward > -10, no trailing ':', not "
        "a duplicate; the longest responses, shuffled with seed 42.",
        [
            _rule("input_quality", "in", ["good", "excellent"]),
            _rule("instruct_reward", ">", -10),
            NO_COLON,
            NOT_DUPLICATE,
        ],
        top_n=300_000,
        shuffle_seed=42,
    ),
    "magpie-mt": Preset(
        "Multi-turn sets: input quality >= good, difficulty >= easy.",
        [_rule("input_quality", ">=", "good"), _rule("difficulty", ">=", "easy")],
    ),
    "magpie-dpo": Preset(
        "The DPO set: difficulty >= medium, input quality >= good, reward >= -5.",
        [
            _rule("difficulty", ">=", "medium"),
            _rule("input_quality", ">=", "good"),
            _rule("instruct_reward", ">=", -5),
        ],
    ),
}


@dataclass(frozen=True)
class FilterPlan:
    rules: list[FilterRule]
    top_n: int | None
    shuffle_seed: int | None
    preset: str | None


def plan_filter(cfg: FilterConfig, columns: dict[str, str | None]) -> FilterPlan:
    """The preset's rules then the config's, checked against the columns the build will
    have (column -> the tagger that makes it, None for generated columns)."""
    preset = None
    if cfg.preset is not None:
        if cfg.preset not in PRESETS:
            raise UnknownNameError("filter preset", cfg.preset, PRESETS)
        preset = PRESETS[cfg.preset]
    rules = [*(preset.rules if preset else []), *cfg.rules]
    for rule in rules:
        check_rule(rule, columns)
    return FilterPlan(
        rules,
        cfg.top_n if cfg.top_n is not None else (preset.top_n if preset else None),
        cfg.shuffle_seed
        if cfg.shuffle_seed is not None
        else (preset.shuffle_seed if preset else None),
        cfg.preset,
    )


def producers(taggers: Iterable[Any]) -> dict[str, str]:
    """Column -> the name of the tagger that produces it."""
    return {column: t.name for t in taggers for column in t.columns}


def check_rule(rule: FilterRule, columns: dict[str, str | None]) -> None:
    """A clear error for a rule on a missing column, or with an unknown label."""
    if rule.column not in columns:
        from magpie_hub.plugins import get_registry

        makers = producers(get_registry().taggers.values())
        hint = (
            f"Add the tagger {makers[rule.column]!r} to [curate] taggers."
            if rule.column in makers
            else f"Columns here: {', '.join(sorted(columns))}."
        )
        raise ConfigError(
            f"filter rule `{rule.describe()}`: no column {rule.column!r} in this build",
            field="filter.rules",
            hint=hint,
        )
    labels = VOCABULARY.get(rule.column)
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    if labels and rule.op not in ("not_null", "first_of_group"):
        unknown = [v for v in values if v not in labels]
        if unknown:
            raise ConfigError(
                f"filter rule `{rule.describe()}`: {unknown[0]!r} is not a label of "
                f"{rule.column!r}",
                field="filter.rules",
                hint=f"Labels: {', '.join(labels)}.",
            )
    if rule.op in ("<", "<=", ">", ">=") and labels and rule.column not in ORDERED:
        raise ConfigError(
            f"filter rule `{rule.describe()}`: {rule.column!r} labels have no order",
            field="filter.rules",
            hint="Use ==, !=, in or not_in.",
        )
    if rule.op in ("in", "not_in") and not isinstance(rule.value, list):
        raise ConfigError(
            f"filter rule `{rule.describe()}`: {rule.op} needs a list value",
            field="filter.rules",
            hint='Example: {column = "input_quality", op = "in", value = ["good", "excellent"]}',
        )


def predicate(rule: FilterRule) -> Callable[[dict[str, Any]], bool]:
    """The rule as a function of a row."""
    order = ORDERED.get(rule.column)

    def key(v: Any) -> Any:
        return order.index(v) if order is not None else v

    col, op, want = rule.column, rule.op, rule.value
    if op == "not_null":
        return lambda r: r.get(col) is not None
    if op == "first_of_group":
        return lambda r: r.get(col) is None or r.get(col) == r.get("uuid")
    if op in ("endswith", "not_endswith"):
        keep = op == "endswith"
        return lambda r: r.get(col) is not None and str(r[col]).rstrip().endswith(want) == keep
    if op in ("in", "not_in"):
        inside = op == "in"
        return lambda r: r.get(col) is not None and (r[col] in want) == inside
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    fn, target = compare[op], key(want)
    return lambda r: r.get(col) is not None and fn(key(r[col]), target)


def apply_filter(
    rows: list[dict[str, Any]], plan: FilterPlan
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept rows, funnel): the funnel has one entry per step with the rows it removed."""
    funnel = [{"step": "curated rows", "rows_after": len(rows), "removed": 0}]
    for rule in plan.rules:
        test = predicate(rule)
        kept = [r for r in rows if test(r)]
        funnel.append(
            {"step": rule.describe(), "rows_after": len(kept), "removed": len(rows) - len(kept)}
        )
        rows = kept
    if plan.top_n is not None:
        order = sorted(range(len(rows)), key=lambda i: (-len(rows[i].get("response") or ""), i))
        kept = [rows[i] for i in sorted(order[: plan.top_n])]
        step = f"top {plan.top_n} longest responses"
        funnel.append({"step": step, "rows_after": len(kept), "removed": len(rows) - len(kept)})
        rows = kept
    if plan.shuffle_seed is not None:
        rows = list(rows)
        random.Random(plan.shuffle_seed).shuffle(rows)
    return rows, funnel
