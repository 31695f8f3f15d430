"""distilabel steps the recipes are built from, each with a narrow contract.

(No `from __future__ import annotations` here: distilabel reads the `StepInput`
type hint of `process` at run time.)

Rows flow as dicts. A row that a step decides to drop keeps flowing with
`dropped_reason` set, so batches stay aligned with what the sink commits.
A row whose generation failed (engine error) has neither output nor reason:
the sink does not commit it, and a resumed run generates it again.
"""

import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from distilabel.steps import Step, StepInput
from distilabel.steps.tasks import Task
from distilabel.typing import StepColumns, StepOutput

from magpie_hub.chat_template import ChatTemplate
from magpie_hub.templates import PromptFormat

ROW_NAMESPACE = uuid.UUID("6d61676e-6965-4875-8262-726f77730000")
ROLE_WORDS = {"user", "assistant", "system", "model", "human", "gpt"}
_MARKUP = re.compile(r"<\|[^|<>\s]+\|>|</?[a-z_]+>|\[/?INST\]")


def row_seed(seed: int, row_index: int, step: str) -> int:
    """A per-row, per-step seed: the same row gets the same text however rows are batched."""
    digest = hashlib.sha256(f"{seed}:{row_index}:{step}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def row_uuid(fingerprint: str, row_index: int) -> str:
    return str(uuid.uuid5(ROW_NAMESPACE, f"{fingerprint}:{row_index}"))


def prompt_fields(fmt: PromptFormat) -> dict[str, Any]:
    """A prompt format as the plain fields the generation steps take."""
    template = fmt.chat_template
    return {
        "pre_query": fmt.pre_query,
        "user_to_assistant": fmt.user_to_assistant,
        "stop": list(fmt.stop),
        "chat_template": template.source if template else None,
        "bos_token": template.bos_token if template else "",
        "eos_token": template.eos_token if template else "",
    }


def check_instruction(raw: str | None, finish_reason: str | None) -> tuple[str | None, str | None]:
    """(instruction, None) for a usable instruction, else (None, why it is dropped)."""
    if raw is None:
        return None, None
    if finish_reason == "length":
        return None, "truncated"
    match = _MARKUP.search(raw)
    text = (raw[: match.start()] if match else raw).strip()
    if not text:
        return None, "only_markup" if match else "empty"
    first_line = text.splitlines()[0].strip().rstrip(":").lower()
    if first_line in ROLE_WORDS:
        return None, "role_marker"
    return text, None


class _RawTextTask(Task):
    """A task whose prompts are raw text built from the model's prompt format."""

    seed: int
    stop: list[str]
    # The prompt format, kept as plain fields so the step serializes (see `prompt_format`).
    pre_query: str
    user_to_assistant: str
    chat_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""

    def prompt_format(self) -> PromptFormat:
        template = (
            ChatTemplate(self.chat_template, self.bos_token, self.eos_token)
            if self.chat_template
            else None
        )
        return PromptFormat(self.pre_query, tuple(self.stop), self.user_to_assistant, "", template)

    def format_input(self, input: dict[str, Any]) -> str:
        """The prompt for the next user turn of this row (what the first step completes)."""
        return self.prompt_format().next_user_prompt(input.get("conversation") or [])

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict:
        return {"text": output}

    def instruction_turn(
        self, rows: list[dict[str, Any]], turn: int, system: str | None, sampling: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Append a generated user message to every live row's conversation."""
        fmt = self.prompt_format()
        todo = [r for r in rows if _live(r)]
        prompts = [fmt.next_user_prompt(r["conversation"], system) for r in todo]
        done = {
            r["row_index"]: o
            for r, o in zip(todo, self._complete(prompts, todo, f"i{turn}", sampling), strict=True)
        }
        for row in rows:
            if row["row_index"] in done:
                out = done[row["row_index"]]
                text, reason = check_instruction(out["generations"][0], out["finish_reason"][0])
                row["dropped_reason"] = reason
                row["conversation"] = (
                    [*row["conversation"], {"role": "user", "content": text}] if text else None
                )
        return rows

    def response_turn(
        self, rows: list[dict[str, Any]], turn: int, system: str | None, sampling: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Append the model's answer to every live row's conversation."""
        fmt = self.prompt_format()
        todo = [r for r in rows if _live(r)]
        prompts = [fmt.response_prompt(r["conversation"], system) for r in todo]
        done = {
            r["row_index"]: o
            for r, o in zip(todo, self._complete(prompts, todo, f"r{turn}", sampling), strict=True)
        }
        for row in rows:
            if row["row_index"] in done:
                response = (done[row["row_index"]]["generations"][0] or "").strip()
                if response:
                    row["conversation"] = [
                        *row["conversation"],
                        {"role": "assistant", "content": response},
                    ]
                else:
                    row["dropped_reason"], row["conversation"] = "empty_response", None
        return rows

    def _complete(
        self, prompts: list[str], rows: list[dict[str, Any]], key: str, sampling: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not prompts:
            return []
        return self.llm.generate_outputs(
            inputs=prompts,
            num_generations=1,
            seeds=[row_seed(self.seed, r["row_index"], key) for r in rows],
            stop=self.stop,
            **sampling,
        )


def _live(row: dict[str, Any]) -> bool:
    return not row.get("dropped_reason") and row.get("conversation") is not None


def _first_turn(row: dict[str, Any], fingerprint: str, model_id: str) -> dict[str, Any]:
    return {
        **row,
        "conversation": [],
        "dropped_reason": None,
        "uuid": row_uuid(fingerprint, row["row_index"]),
        "model": model_id,
    }


def _turn_columns(row: dict[str, Any]) -> dict[str, Any]:
    """`instruction` and `response`: the first turn, read from the conversation."""
    convo = row.get("conversation") or []
    users = [m["content"] for m in convo if m["role"] == "user"]
    answers = [m["content"] for m in convo if m["role"] == "assistant"]
    return {
        "instruction": users[0] if users else None,
        "response": answers[0] if answers else None,
        "num_turns": len(users),
    }


class GenerateInstruction(_RawTextTask):
    """Magpie step 1: the model sees only the pre-query template and writes a user turn."""

    sampling: dict[str, Any]
    system_prompt: str | None = None
    fingerprint: str
    model_id: str

    @property
    def inputs(self) -> StepColumns:
        return ["row_index"]

    @property
    def outputs(self) -> StepColumns:
        return ["instruction", "conversation", "dropped_reason", "uuid", "model"]

    def process(self, inputs: StepInput) -> StepOutput:
        rows = [_first_turn(r, self.fingerprint, self.model_id) for r in inputs]
        rows = self.instruction_turn(rows, 1, self.system_prompt, self.sampling)
        yield [{**r, "instruction": _turn_columns(r)["instruction"]} for r in rows]


class GenerateResponse(_RawTextTask):
    """Magpie step 2: answer the instruction through the model's chat template."""

    sampling: dict[str, Any]
    system_prompt: str | None = None

    @property
    def inputs(self) -> StepColumns:
        return ["row_index", "conversation", "dropped_reason"]

    @property
    def outputs(self) -> StepColumns:
        return ["response", "conversation", "dropped_reason"]

    def process(self, inputs: StepInput) -> StepOutput:
        rows = self.response_turn([dict(r) for r in inputs], 1, self.system_prompt, self.sampling)
        yield [{**r, "response": _turn_columns(r)["response"]} for r in rows]


class GenerateConversation(_RawTextTask):
    """Multi-turn Magpie with one model: instruction and response turns in sequence."""

    turns: int
    end_with_user: bool = False
    instruction_system_prompt: str | None = None
    response_system_prompt: str | None = None
    instruction_sampling: dict[str, Any]
    response_sampling: dict[str, Any]
    fingerprint: str
    model_id: str

    @property
    def inputs(self) -> StepColumns:
        return ["row_index"]

    @property
    def outputs(self) -> StepColumns:
        return [
            "conversation",
            "dropped_reason",
            "uuid",
            "model",
            "instruction",
            "response",
            "num_turns",
        ]

    def process(self, inputs: StepInput) -> StepOutput:
        rows = [_first_turn(r, self.fingerprint, self.model_id) for r in inputs]
        for turn in range(1, self.turns + 1):
            rows = self.instruction_turn(
                rows, turn, self.instruction_system_prompt, self.instruction_sampling
            )
            if turn < self.turns or not self.end_with_user:
                rows = self.response_turn(
                    rows, turn, self.response_system_prompt, self.response_sampling
                )
        yield [{**r, **_turn_columns(r)} for r in rows]


class WriteChunks(Step):
    """Sink: commit each batch as a Parquet chunk plus a JSON marker, atomically.

    A chunk counts only once its marker exists; the marker lists every row index
    the batch settled (written or dropped). Failed rows are left out so a resumed
    run retries them.
    """

    chunk_dir: str
    columns: list[str]
    constants: dict[str, Any]
    conversation_system: str | None = None
    """When set, the written `conversation` starts with this system message."""
    arrow_schema_json: str
    """`datasets.Features` of the written rows, as JSON (kept plain so the step serializes)."""

    @property
    def inputs(self) -> StepColumns:
        return ["row_index", "dropped_reason"]

    @property
    def outputs(self) -> StepColumns:
        return []

    def process(self, inputs: StepInput) -> StepOutput:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from datasets import Features

        kept, dropped, failed = [], {}, []
        for row in inputs:
            if row.get("dropped_reason"):
                dropped[row["row_index"]] = row["dropped_reason"]
            elif any(row.get(c) is None for c in self.columns if c not in _NULLABLE):
                failed.append(row["row_index"])
            else:
                kept.append(row)
        first = min(r["row_index"] for r in inputs)
        directory = Path(self.chunk_dir)
        stem = f"chunk-{first:08d}-{uuid.uuid4().hex[:8]}"
        features = Features.from_dict(json.loads(self.arrow_schema_json))
        records = [{**{c: row.get(c) for c in self.columns}, **self.constants} for row in kept]
        if self.conversation_system is not None:
            system = {"role": "system", "content": self.conversation_system}
            for record in records:
                record["conversation"] = [system, *record["conversation"]]
        table = pa.Table.from_pylist(records, schema=features.arrow_schema)
        _atomic_write(directory / f"{stem}.parquet", lambda p: pq.write_table(table, p))
        marker = {
            "written": [r["row_index"] for r in kept],
            "dropped": {str(k): v for k, v in dropped.items()},
            "failed": failed,
        }
        _atomic_write(directory / f"{stem}.json", lambda p: p.write_text(json.dumps(marker)))
        yield [
            {"row_index": r["row_index"], "dropped_reason": r.get("dropped_reason")} for r in inputs
        ]


_NULLABLE = {"system_prompt"}


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)
