"""Training-ready views of any build's rows, chosen by `RunConfig.views`: `sharegpt`
(`conversations` of `from`/`value`) and `alpaca` (`instruction`, `input`, `output`; single
turns only). Each is written like a recipe's view (data/<name>/, its own Hub config), with
counts of the rows it left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from datasets import Features, Value

from magpie_hub.registry import View
from magpie_hub.row_streams import ParquetRows, made_view

TRAINING_VIEWS = ("sharegpt", "alpaca")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}
SHAREGPT_FEATURES = Features(
    {
        "uuid": Value("string"),
        "conversations": [{"from": Value("string"), "value": Value("string")}],
    }
)
ALPACA_FEATURES = Features(
    {
        "uuid": Value("string"),
        "instruction": Value("string"),
        "input": Value("string"),
        "output": Value("string"),
    }
)


def _messages(row: dict[str, Any]) -> list[dict[str, str]] | None:
    """The row's conversation, or one made of its instruction and response."""
    if row.get("conversation"):
        return list(row["conversation"])
    if row.get("instruction") and row.get("response"):
        return [
            {"role": "user", "content": row["instruction"]},
            {"role": "assistant", "content": row["response"]},
        ]
    return None


def _sharegpt_row(row: dict[str, Any], left: Counter[str]) -> dict[str, Any] | None:
    messages = _messages(row)
    if not messages or messages[-1]["role"] != "assistant":
        left["no_answer"] += 1
        return None
    if any(m["role"] not in SHAREGPT_ROLES for m in messages):
        left["unknown_role"] += 1
        return None
    turns = [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages]
    return {"uuid": row.get("uuid"), "conversations": turns}


def sharegpt(rows: Iterable[dict[str, Any]]) -> View:
    """Every row whose conversation ends with an answer, as ShareGPT `conversations`."""
    return made_view(rows, _sharegpt_row, SHAREGPT_FEATURES, _counts)


SYSTEM_DROPPED = "\0system_prompt_not_kept"
"""The tally key of alpaca rows kept without their system prompt (not a left-out reason)."""


def _alpaca_row(row: dict[str, Any], left: Counter[str]) -> dict[str, Any] | None:
    messages = _messages(row)
    if not messages or messages[-1]["role"] != "assistant":
        left["no_answer"] += 1
        return None
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) != 2 or turns[0]["role"] != "user":
        left["multi_turn"] += 1
        return None
    left[SYSTEM_DROPPED] += len(turns) != len(messages)
    return {
        "uuid": row.get("uuid"),
        "instruction": turns[0]["content"],
        "input": "",
        "output": turns[1]["content"],
    }


def _alpaca_counts(tally: Counter[str]) -> dict[str, int]:
    left = Counter({k: v for k, v in tally.items() if k != SYSTEM_DROPPED})
    return {**_counts(left), "system_prompt_not_kept": tally[SYSTEM_DROPPED]}


def alpaca(rows: Iterable[dict[str, Any]]) -> View:
    """Single-turn rows (one user message, one answer) as Alpaca records. A system prompt
    has no place in Alpaca: such rows are kept without it and counted."""
    return made_view(rows, _alpaca_row, ALPACA_FEATURES, _alpaca_counts)


def _counts(left: Counter[str]) -> dict[str, int]:
    return {"left_out": sum(left.values()), **{f"left_out_{k}": v for k, v in sorted(left.items())}}


MAKERS = {"sharegpt": sharegpt, "alpaca": alpaca}
READS = ["uuid", "conversation", "instruction", "response"]
"""The columns the training views read."""


def training_views(rows: Sequence[dict[str, Any]], names: Iterable[str]) -> dict[str, View]:
    """The chosen views of `rows` (names outside `TRAINING_VIEWS` are a config bug), made
    as they are written; rows read from Parquet are read for the columns the views use."""
    if isinstance(rows, ParquetRows):
        rows = rows.select(READS)
    return {name: MAKERS[name](rows) for name in names}


def unselected(names: Iterable[str]) -> list[str]:
    """The training views not chosen: their folders from an earlier run are stale."""
    chosen = set(names)
    return [n for n in TRAINING_VIEWS if n not in chosen]
