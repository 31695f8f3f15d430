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
    """A task whose prompts are raw text and whose sampling comes from the recipe config."""

    sampling: dict[str, Any]
    stop: list[str]
    seed: int

    def _complete(self, prompts: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.llm.generate_outputs(
            inputs=prompts,
            num_generations=1,
            seeds=[row_seed(self.seed, r["row_index"], self.name) for r in rows],
            stop=self.stop,
            **self.sampling,
        )

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict:
        return {self.outputs[0]: output}


class GenerateInstruction(_RawTextTask):
    """Magpie step 1: the model sees only the pre-query template and writes a user turn."""

    prompt: str
    system_prompt: str | None = None
    fingerprint: str
    model_id: str

    @property
    def inputs(self) -> StepColumns:
        return ["row_index"]

    @property
    def outputs(self) -> StepColumns:
        return ["instruction", "dropped_reason", "uuid", "system_prompt", "model"]

    def format_input(self, input: dict[str, Any]) -> str:
        return self.prompt

    def process(self, inputs: StepInput) -> StepOutput:
        outputs = self._complete([self.prompt] * len(inputs), inputs)
        rows = []
        for row, out in zip(inputs, outputs, strict=True):
            text, reason = check_instruction(out["generations"][0], out["finish_reason"][0])
            rows.append(
                {
                    **row,
                    "instruction": text,
                    "dropped_reason": reason,
                    "uuid": row_uuid(self.fingerprint, row["row_index"]),
                    "system_prompt": self.system_prompt,
                    "model": self.model_id,
                }
            )
        yield rows


class GenerateResponse(_RawTextTask):
    """Magpie step 2: answer the instruction through the model's chat template."""

    pre_query: str
    user_to_assistant: str
    chat_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""

    @property
    def inputs(self) -> StepColumns:
        return ["row_index", "instruction", "dropped_reason", "system_prompt"]

    @property
    def outputs(self) -> StepColumns:
        return ["response", "conversation"]

    def prompt_format(self) -> PromptFormat:
        template = (
            ChatTemplate(self.chat_template, self.bos_token, self.eos_token)
            if self.chat_template
            else None
        )
        return PromptFormat(self.pre_query, tuple(self.stop), self.user_to_assistant, "", template)

    def format_input(self, input: dict[str, Any]) -> str:
        return self.prompt_format().response_prompt(input["instruction"], input["system_prompt"])

    def process(self, inputs: StepInput) -> StepOutput:
        todo = [r for r in inputs if r.get("instruction") and not r.get("dropped_reason")]
        outputs = self._complete([self.format_input(r) for r in todo], todo) if todo else []
        answered = {r["row_index"]: o for r, o in zip(todo, outputs, strict=True)}
        rows = []
        for row in inputs:
            out = answered.get(row["row_index"])
            response = out["generations"][0] if out else None
            reason = row.get("dropped_reason")
            if out is not None and (response is None or not response.strip()):
                response, reason = None, "empty_response"
            conversation = None
            if response is not None:
                response = response.strip()
                conversation = [
                    {"role": "user", "content": row["instruction"]},
                    {"role": "assistant", "content": response},
                ]
                if row.get("system_prompt") is not None:
                    conversation.insert(0, {"role": "system", "content": row["system_prompt"]})
            rows.append(
                {
                    **row,
                    "response": response,
                    "conversation": conversation,
                    "dropped_reason": reason,
                }
            )
        yield rows


class WriteChunks(Step):
    """Sink: commit each batch as a Parquet chunk plus a JSON marker, atomically.

    A chunk counts only once its marker exists; the marker lists every row index
    the batch settled (written or dropped). Failed rows are left out so a resumed
    run retries them.
    """

    chunk_dir: str
    columns: list[str]
    constants: dict[str, Any]
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
