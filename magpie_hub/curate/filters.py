"""Filter rules and presets: the `filtered` view and its funnel (rows after each rule).

A rule keeps the rows where `column op value` holds; a null value never passes a
comparison. Ordered labels (`input_quality`, `difficulty`) compare by their order, so
`input_quality >= good` keeps good and excellent. After the rules: the `top_n` rows
with the longest responses (ties: build order), then an optional seeded shuffle.
"""

from __future__ import annotations

import random
from array import array
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


class FilterPass:
    """The filter over rows handed over a run at a time (`add`), in build order: it keeps
    per row only whether it passed every rule and its response length; `kept()` then takes
    the `top_n` and shuffles. Rows need only `plan`'s `columns`."""

    def __init__(self, plan: FilterPlan) -> None:
        self.plan = plan
        self.tests = [predicate(rule) for rule in plan.rules]
        self.removed = [0] * len(plan.rules)
        self.rows = 0
        self.passed, self.lengths = array("q"), array("q")

    @property
    def columns(self) -> list[str]:
        """The columns the rules and `top_n` read."""
        return sorted({"uuid", "response", *(rule.column for rule in self.plan.rules)})

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            for k, test in enumerate(self.tests):
                if not test(row):
                    self.removed[k] += 1
                    break
            else:
                self.passed.append(self.rows)
                self.lengths.append(len(row.get("response") or ""))
            self.rows += 1

    def kept(self) -> tuple[list[int], list[dict[str, Any]]]:
        """(the kept rows' positions, in the view's order; the funnel: one entry per step
        with the rows it removed)."""
        import numpy as np

        funnel = [{"step": "curated rows", "rows_after": self.rows, "removed": 0}]
        after = self.rows
        for rule, removed in zip(self.plan.rules, self.removed, strict=True):
            after -= removed
            funnel.append({"step": rule.describe(), "rows_after": after, "removed": removed})
        positions = np.frombuffer(self.passed, np.int64) if self.passed else np.zeros(0, int)
        if self.plan.top_n is not None:
            lengths = np.frombuffer(self.lengths, np.int64) if self.lengths else positions
            best = np.lexsort((positions, -lengths))[: self.plan.top_n]
            top = np.sort(positions[best])
            step = f"top {self.plan.top_n} longest responses"
            funnel.append({"step": step, "rows_after": len(top), "removed": after - len(top)})
            positions = top
        kept = [int(p) for p in positions]
        if self.plan.shuffle_seed is not None:
            random.Random(self.plan.shuffle_seed).shuffle(kept)
        return kept, funnel


def apply_filter(
    rows: list[dict[str, Any]], plan: FilterPlan
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept rows, funnel) of rows held in a list (see `FilterPass`)."""
    check = FilterPass(plan)
    check.add(rows)
    kept, funnel = check.kept()
    return [rows[i] for i in kept], funnel
