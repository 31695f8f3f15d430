"""Training-ready views of any build's rows, chosen by `RunConfig.views`: `sharegpt`
(`conversations` of `from`/`value`) and `alpaca` (`instruction`, `input`, `output`; single
turns only). Each is written like a recipe's view (data/<name>/, its own Hub config), with
counts of the rows it left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from datasets import Features, Value

from magpie_hub.registry import View

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


def sharegpt(rows: Iterable[dict[str, Any]]) -> View:
    """Every row whose conversation ends with an answer, as ShareGPT `conversations`."""
    out, left = [], Counter[str]()
    for row in rows:
        messages = _messages(row)
        if not messages or messages[-1]["role"] != "assistant":
            left["no_answer"] += 1
            continue
        if any(m["role"] not in SHAREGPT_ROLES for m in messages):
            left["unknown_role"] += 1
            continue
        turns = [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages]
        out.append({"uuid": row.get("uuid"), "conversations": turns})
    return View(out, SHAREGPT_FEATURES, _counts(left))


def alpaca(rows: Iterable[dict[str, Any]]) -> View:
    """Single-turn rows (one user message, one answer) as Alpaca records. A system prompt
    has no place in Alpaca: such rows are kept without it and counted."""
    out, left = [], Counter[str]()
    system_dropped = 0
    for row in rows:
        messages = _messages(row)
        if not messages or messages[-1]["role"] != "assistant":
            left["no_answer"] += 1
            continue
        turns = [m for m in messages if m["role"] != "system"]
        if len(turns) != 2 or turns[0]["role"] != "user":
            left["multi_turn"] += 1
            continue
        system_dropped += len(turns) != len(messages)
        out.append(
            {
                "uuid": row.get("uuid"),
                "instruction": turns[0]["content"],
                "input": "",
                "output": turns[1]["content"],
            }
        )
    return View(out, ALPACA_FEATURES, {**_counts(left), "system_prompt_not_kept": system_dropped})


def _counts(left: Counter[str]) -> dict[str, int]:
    return {"left_out": sum(left.values()), **{f"left_out_{k}": v for k, v in sorted(left.items())}}


MAKERS = {"sharegpt": sharegpt, "alpaca": alpaca}


def training_views(rows: list[dict[str, Any]], names: Iterable[str]) -> dict[str, View]:
    """The chosen views of `rows` (names outside `TRAINING_VIEWS` are a config bug)."""
    return {name: MAKERS[name](rows) for name in names}


def unselected(names: Iterable[str]) -> list[str]:
    """The training views not chosen: their folders from an earlier run are stale."""
    chosen = set(names)
    return [n for n in TRAINING_VIEWS if n not in chosen]
