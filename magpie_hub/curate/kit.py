"""The tagger kit: what `make_step` gets, the step bases, and the sink that commits
their values to the tag stores (`curate.store`).

(No `from __future__ import annotations`: distilabel reads `StepInput` at run time.)
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilabel.steps.base import Step, StepInput
from distilabel.typing import StepColumns, StepOutput

from magpie_hub.config import CurateConfig
from magpie_hub.curate.store import ERROR, commit_chunk, done_key
from magpie_hub.generate.tasks import _RawTextTask
from magpie_hub.prompts.templates import PromptFormat
from magpie_hub.steps import LightStep, prompt_fields

__all__ = ["ERROR", "TODO", "JudgeTagStep", "TagContext", "TagStep", "WriteTags", "done_key"]

TODO = "_todo"
"""Row key: the taggers that still lack this row."""


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


class WriteTags(LightStep, Step):
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
