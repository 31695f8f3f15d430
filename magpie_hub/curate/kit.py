"""The tagger kit: what `make_step` gets, the step bases, and the tag store.

A tag store holds one tagger's values for one cache key (its model and settings) as
committed chunks under BUILD/.magpie/curate/<tagger>-<key>/: a Parquet file of
`uuid` + the stored columns + `_error`, and a JSON marker listing the uuids. A chunk
counts once its marker exists, so a killed run loses at most the batches in flight,
and a re-run computes exactly the rows no marker lists.

(No `from __future__ import annotations`: distilabel reads `StepInput` at run time.)
"""

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilabel.steps import Step, StepInput
from distilabel.typing import StepColumns, StepOutput

from magpie_hub.build import atomic_write
from magpie_hub.config import CurateConfig
from magpie_hub.generate.tasks import _RawTextTask
from magpie_hub.prompts.templates import PromptFormat
from magpie_hub.steps import prompt_fields

TODO = "_todo"
"""Row key: the taggers that still lack this row."""
ERROR = "_error"
"""Stored column: why a tag could not be computed (None when it was)."""


def done_key(tagger: str) -> str:
    """Row key under which a step leaves its stored values for the sink."""
    return f"_tag_{tagger}"


@dataclass(frozen=True)
class TagContext:
    """What a tagger's `make_step` gets."""

    config: CurateConfig
    seed: int
    has_base: bool
    """The rows have `response_base` (pairs): reward also scores the base answer."""
    judge_id: str | None = None
    judge_format: PromptFormat | None = None
    """The judge's prompt format, resolved once for the build."""
    make_judge_llm: Callable[[], Any] | None = None

    def judge_fields(self) -> dict[str, Any]:
        """Keyword arguments for a `JudgeTagStep`: the judge LLM and its prompt format."""
        if self.make_judge_llm is None or self.judge_format is None:
            raise RuntimeError("this tagger needs the judge; mark it `uses_judge=True`")
        return {"llm": self.make_judge_llm(), "seed": self.seed, **prompt_fields(self.judge_format)}


class _Tags:
    """Shared by both step bases: tag only the rows that lack this tagger."""

    tagger: str

    @property
    def inputs(self) -> StepColumns:
        return ["uuid", TODO]

    @property
    def outputs(self) -> StepColumns:
        return [done_key(self.tagger)]

    def tag(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stored columns (and `_error`) for each row, in order."""
        raise NotImplementedError

    def process(self, inputs: StepInput) -> StepOutput:
        rows = [dict(r) for r in inputs]
        todo = [r for r in rows if self.tagger in r[TODO]]
        for row, values in zip(todo, self.tag(todo) if todo else [], strict=True):
            row[done_key(self.tagger)] = values
        yield rows


class TagStep(_Tags, Step):
    """Base of taggers that compute locally (language, embeddings, reward)."""

    tagger: str


class JudgeTagStep(_Tags, _RawTextTask):
    """Base of taggers that ask the judge model (its LLM is loaded in the step's worker)."""

    tagger: str
    max_new_tokens: int = 256

    def ask(self, rows: list[dict[str, Any]], prompts: list[str], schema: dict | None) -> list:
        """The judge's raw answers (None where the engine failed), greedy, schema-forced
        where the engine supports it."""
        fmt = self.prompt_format()
        chat = [fmt.response_prompt([{"role": "user", "content": p}], None) for p in prompts]
        sampling: dict[str, Any] = {
            "temperature": 0.0,
            "top_p": 1.0,
            "max_new_tokens": self.max_new_tokens,
        }
        if schema is not None:
            sampling["json_schema"] = json.dumps(schema)
        outputs = self._complete(chat, rows, f"tag-{self.tagger}", sampling)
        return [(o["generations"][0], (o.get("finish_reason") or [None])[0]) for o in outputs]


class WriteTags(Step):
    """Sink: commit each tagger's values of a batch as a chunk of its store."""

    stores: dict[str, str]
    """Tagger -> its store folder."""
    schemas: dict[str, str]
    """Tagger -> `datasets.Features` (as JSON) of its stored columns."""

    @property
    def inputs(self) -> StepColumns:
        return ["uuid"]

    @property
    def outputs(self) -> StepColumns:
        return []

    def process(self, inputs: StepInput) -> StepOutput:
        for tagger, folder in self.stores.items():
            done = [r for r in inputs if r.get(done_key(tagger)) is not None]
            if done:
                commit_chunk(Path(folder), self.schemas[tagger], done, tagger)
        yield [{"uuid": r["uuid"]} for r in inputs]


def store_features(columns: dict[str, Any]) -> Any:
    from datasets import Features, Value

    return Features({"uuid": Value("string"), **columns, ERROR: Value("string")})


def commit_chunk(folder: Path, schema_json: str, rows: list[dict[str, Any]], tagger: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features

    features = Features.from_dict(json.loads(schema_json))
    records = [
        {"uuid": r["uuid"], **{c: r[done_key(tagger)].get(c) for c in features if c != "uuid"}}
        for r in rows
    ]
    table = pa.Table.from_pylist(records, schema=features.arrow_schema)
    stem = f"chunk-{uuid.uuid4().hex[:12]}"
    atomic_write(folder / f"{stem}.parquet", lambda p: pq.write_table(table, p))
    marker = json.dumps({"uuids": [r["uuid"] for r in rows]})
    atomic_write(folder / f"{stem}.json", lambda p: p.write_text(marker))


def read_store(folder: Path, uuids: list[str]) -> Any:
    """The stored values of `uuids`, in that order, as a pyarrow Table (uuid, the stored
    columns, `_error`), from committed chunks only (the first commit of a uuid wins).
    Raises KeyError naming how many uuids have no committed value."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(m.with_suffix(".parquet")) for m in sorted(folder.glob("chunk-*.json"))]
    if not tables:
        raise KeyError(len(uuids))
    table = pa.concat_tables(tables, promote_options="default")
    position: dict[str, int] = {}
    for i, key in enumerate(table.column("uuid").to_pylist()):
        position.setdefault(key, i)
    missing = sum(1 for u in uuids if u not in position)
    if missing:
        raise KeyError(missing)
    return table.take(pa.array([position[u] for u in uuids], pa.int64()))


def committed_uuids(folder: Path) -> set[str]:
    done: set[str] = set()
    for marker in folder.glob("chunk-*.json"):
        done.update(json.loads(marker.read_text())["uuids"])
    return done


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
