"""Row helpers and the sink step that commits finished batches.

(No `from __future__ import annotations` here: distilabel reads the `StepInput`
type hint of `process` at run time.)

Rows flow as dicts. A row that a step decides to drop keeps flowing with
`dropped_reason` set, so batches stay aligned with what the sink commits.
A row whose generation failed (engine error) has neither output nor reason:
the sink does not commit it, and a resumed run generates it again.
"""

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any

from distilabel.steps.base import GeneratorStep, Step, StepInput
from distilabel.typing import GeneratorStepOutput, StepColumns, StepOutput
from pydantic import Field

from magpie_hub.build import atomic_write
from magpie_hub.prompts.templates import PromptFormat

ROW_NAMESPACE = uuid.UUID("6d61676e-6965-4875-8262-726f77730000")
ROLE_WORDS = {"user", "assistant", "system", "model", "human", "gpt"}
_MARKUP = re.compile(r"<\|[^|<>\s]+\|>|</?[a-z_]+>|\[/?INST\]")


def sampling_features(section: Any) -> dict[str, Any]:
    """The `gen_config` struct of one step (row types), read from its sampling config model,
    so every setting (`stop_at_newline`, `ban_first_tokens`, ...) reaches the rows."""
    kinds: dict[Any, Any] = {
        float: "float64",
        int: "int64",
        bool: "bool",
        str: "string",
        str | None: "string",
        list[str]: ["string"],
    }
    features: dict[str, Any] = {}
    for name, field in section.model_fields.items():
        if field.annotation not in kinds:
            raise TypeError(f"{section.__name__}.{name}: no row type for {field.annotation}")
        features[name] = kinds[field.annotation]
    return features


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
        "render_date": template.date if template else None,
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
    lines = text.splitlines()
    if _is_role_word(lines[0]):
        return None, "role_marker"
    while len(lines) > 1 and _is_role_word(lines[-1]):  # a trailing "Assistant:" line
        lines.pop()
    return "\n".join(lines).strip(), None


def _is_role_word(line: str) -> bool:
    return line.strip().rstrip(":").lower() in ROLE_WORDS


def index_ranges(indices: list[int]) -> list[list[int]]:
    """Sorted row indices as [start, stop) runs: a million pending rows are a few numbers."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


def mask_runs(mask: Any) -> list[list[int]]:
    """A numpy bool array as the [start, stop) runs of its True values."""
    import numpy as np

    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def runs_mask(runs: list[list[int]], size: int) -> Any:
    """The runs as a numpy bool array of `size` (True inside a run)."""
    import numpy as np

    mask = np.zeros(size, bool)
    for start, stop in runs:
        mask[start:stop] = True
    return mask


class LightStep:
    """Mixin for a step that does little per batch (no model: a row source, a writer). On
    Ray it runs as a thread of the run's queue actor (`magpie_hub.ray_actors.QueueHub`)
    rather than in a Ray worker process of its own, which cost about 1 s of CPU at start
    on 2 cores; it shares that process, and its interpreter lock, with every queue."""


class RowIndices(LightStep, GeneratorStep):
    """The first step: `{"row_index": i}` for the rows to generate, in batches, made as
    they are sent (distilabel's `LoadDataFromDicts` holds a list and re-slices it per
    batch, quadratic in the rows)."""

    ranges: list[list[int]] = Field(exclude=True)  # distilabel's signature takes no nesting

    @property
    def outputs(self) -> StepColumns:
        return ["row_index"]

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        total = sum(stop - start for start, stop in self.ranges)
        batch: list[dict[str, Any]] = []
        sent = 0
        for start, stop in self.ranges:
            for i in range(start, stop):
                sent += 1
                if sent <= offset:
                    continue
                batch.append({"row_index": i})
                if len(batch) == self.batch_size or sent == total:
                    yield batch, sent == total
                    batch = []


class WriteChunks(LightStep, Step):
    """Sink: commit each batch as a Parquet chunk plus a JSON marker, atomically.

    A chunk counts only once its marker exists; the marker lists every row index
    the batch settled (written or dropped). Failed rows are left out so a resumed
    run retries them.
    """

    chunk_dir: str
    columns: list[str]
    constants: dict[str, Any]
    system_in_conversation: bool = False
    """Start each written `conversation` with the row's system prompt, when it has one."""
    row_types: dict[str, Any]
    """Column types of the written rows (`magpie_hub.row_types`: plain, so the step
    serializes, and the writer needs no `datasets`)."""
    nullable: list[str] = []
    """Columns besides the system prompt that may be null in a written row."""

    @property
    def inputs(self) -> StepColumns:
        return ["row_index", "dropped_reason"]

    @property
    def outputs(self) -> StepColumns:
        return []

    def _nullable(self) -> set[str]:
        return _NULLABLE | set(self.nullable)

    def process(self, inputs: StepInput) -> StepOutput:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from magpie_hub.row_types import arrow_schema

        kept, dropped, failed = [], {}, []
        for row in inputs:
            if row.get("dropped_reason"):
                dropped[row["row_index"]] = row["dropped_reason"]
            elif any(row.get(c) is None for c in self.columns if c not in self._nullable()):
                failed.append(row["row_index"])
            else:
                kept.append(row)
        first = min(r["row_index"] for r in inputs)
        directory = Path(self.chunk_dir)
        stem = f"chunk-{first:08d}-{uuid.uuid4().hex[:8]}"
        records = [{**{c: row.get(c) for c in self.columns}, **self.constants} for row in kept]
        if self.system_in_conversation:
            for record in records:
                if record.get("system_prompt") is not None:
                    system = {"role": "system", "content": record["system_prompt"]}
                    record["conversation"] = [system, *record["conversation"]]
        table = pa.Table.from_pylist(records, schema=arrow_schema(self.row_types))
        atomic_write(directory / f"{stem}.parquet", lambda p: pq.write_table(table, p))
        marker = {
            "written": [r["row_index"] for r in kept],
            "dropped": {str(k): v for k, v in dropped.items()},
            "failed": failed,
        }
        atomic_write(directory / f"{stem}.json", lambda p: p.write_text(json.dumps(marker)))
        yield [
            {"row_index": r["row_index"], "dropped_reason": r.get("dropped_reason")} for r in inputs
        ]


_NULLABLE = {"system_prompt", "system_prompt_key"}
