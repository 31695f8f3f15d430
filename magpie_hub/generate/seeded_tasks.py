"""distilabel tasks of the seeded recipes: LaMini-style instruction lists (`lamini`) and
Instruction Pre-Training's synthesizer (`instruct-synth`), on our raw-text task base.

(No `from __future__ import annotations` here: distilabel reads the `StepInput`
type hint of `process` at run time.)
"""

from pathlib import Path
from typing import Any

from distilabel.steps.base import StepInput
from distilabel.typing import StepColumns, StepOutput
from pydantic import PrivateAttr

from magpie_hub.generate.tasks import _RawTextTask
from magpie_hub.prompts import lamini, synth
from magpie_hub.steps import row_seed, row_uuid


def committed_values(chunk_dir: str, column: str) -> list[Any]:
    """`column` of every committed chunk (one whose marker exists) in `chunk_dir`."""
    import pyarrow.parquet as pq

    values: list[Any] = []
    for marker in sorted(Path(chunk_dir).glob("chunk-*.json")):
        data = marker.with_suffix(".parquet")
        if data.exists() and column in pq.read_schema(data).names:
            values += pq.read_table(data, columns=[column]).column(column).to_pylist()
    return values


def counts_list(counts: dict[str, int]) -> list[dict[str, Any]]:
    """A reason -> count table as rows can hold it: [{reason, count}], by reason."""
    return [{"reason": k, "count": int(v)} for k, v in sorted(counts.items()) if v]


class GenerateListedInstructions(_RawTextTask):
    """LaMini-LM instructions: one prompt (three seeds, maybe three topics) asks for
    `per_call` new instructions; rows `g * per_call + k` share call `g` and take its k-th
    parsed instruction. An instruction already in the build (exact or case-insensitive,
    committed chunks included) drops its row as `duplicate_instruction`; a list too
    short for position k drops it as `short_list`.

    The call is sent as a user message through the model's chat template."""

    sampling: dict[str, Any]
    seeds: list[str]
    topics: list[str] = []
    topic_share: float = 0.5
    per_call: int = 20
    min_words: int = 2
    fingerprint: str
    model_id: str
    chunk_dir: str
    _seen: set[str] = PrivateAttr(default_factory=set)
    _calls: dict[int, tuple[lamini.Draw, lamini.ParsedList]] = PrivateAttr(default_factory=dict)

    @property
    def inputs(self) -> StepColumns:
        return ["row_index"]

    @property
    def outputs(self) -> StepColumns:
        return [
            "uuid",
            "model",
            "instruction",
            "conversation",
            "dropped_reason",
            "system_prompt",
            "source",
            "seed_instructions",
            "topics",
            "list_call",
        ]

    def load(self) -> None:
        super().load()
        self._seen = {lamini.normalize(t) for t in committed_values(self.chunk_dir, "instruction")}

    def draw(self, call: int) -> lamini.Draw:
        return lamini.draw(
            self.seeds, self.topics, self.topic_share, row_seed(self.seed, call, "draw")
        )

    def prompt(self, draw: lamini.Draw) -> str:
        message = lamini.render(draw.seeds, self.per_call, draw.topics)
        return self.prompt_format().response_prompt([{"role": "user", "content": message}])

    def _make_calls(self, calls: list[int]) -> None:
        todo = [c for c in dict.fromkeys(calls) if c not in self._calls]
        draws = [self.draw(c) for c in todo]
        outputs = self._complete(
            [self.prompt(d) for d in draws], [{"row_index": c} for c in todo], "list", self.sampling
        )
        for call, drawn, out in zip(todo, draws, outputs, strict=True):
            text = out["generations"][0]
            if text is None:  # the engine failed: no entry, the rows fail and are retried
                continue
            truncated = out["finish_reason"][0] == "length"
            parsed = lamini.parse_list(
                text, seeds=drawn.seeds, min_words=self.min_words, truncated=truncated
            )
            self._calls[call] = (drawn, parsed)

    def process(self, inputs: StepInput) -> StepOutput:
        self._make_calls([r["row_index"] // self.per_call for r in inputs])
        rows = []
        for row in inputs:
            call, position = divmod(row["row_index"], self.per_call)
            new = {
                **row,
                "uuid": row_uuid(self.fingerprint, row["row_index"]),
                "model": self.model_id,
                "system_prompt": None,
                "instruction": None,
                "conversation": None,
                "dropped_reason": None,
                "source": None,
                "seed_instructions": None,
                "topics": None,
                "list_call": None,
            }
            if call not in self._calls:
                rows.append(new)
                continue
            drawn, parsed = self._calls[call]
            new["source"], new["seed_instructions"] = drawn.source, drawn.seeds
            new["topics"] = drawn.topics
            new["list_call"] = {
                "index": call,
                "position": position,
                "items": len(parsed.items),
                "dropped": counts_list(parsed.dropped),
                "cleaned": counts_list(parsed.cleaned),
            }
            if position >= len(parsed.items):
                new["dropped_reason"] = "short_list"
            elif (key := lamini.normalize(parsed.items[position])) in self._seen:
                new["dropped_reason"] = "duplicate_instruction"
            else:
                self._seen.add(key)
                instruction = parsed.items[position]
                new["instruction"] = instruction
                new["conversation"] = [{"role": "user", "content": instruction}]
            rows.append(new)
        yield rows


class SynthesizePairs(_RawTextTask):
    """Instruction Pre-Training: the synthesizer reads a text (`<s> <CON> text </CON>`)
    and writes `<QUE> q <ANS> a </END>` pairs. With `chain` > 1, rows `g * chain + k`
    form a chain: text k is prompted after texts 0..k-1 of its chain and their pairs
    (while the words fit `budget_words`), after the fixed `demos`. A chain member outside
    the batch is synthesized again (greedy: the same pairs). A text with no usable pair
    drops its row as `no_pairs`; a row past the end of the corpus as `no_text`."""

    sampling: dict[str, Any]
    bos: str = synth.BOS
    chain: int = 1
    budget_words: int
    demos: list[dict[str, Any]] = []
    """Fixed examples shown first: [{text, pairs: [{question, answer}]}]."""
    fingerprint: str
    model_id: str
    _done: dict[int, synth.ParsedPairs | None] = PrivateAttr(default_factory=dict)

    @property
    def inputs(self) -> StepColumns:
        return ["row_index", "text", "earlier"]

    @property
    def outputs(self) -> StepColumns:
        return [
            "uuid",
            "model",
            "pairs",
            "conversation",
            "instruction",
            "response",
            "num_turns",
            "dropped_reason",
            "system_prompt",
            "synth",
        ]

    def _earlier(self, index: int, texts: dict[int, str]) -> list[tuple[str, list[synth.Pair]]]:
        shown = [(d["text"], d["pairs"]) for d in self.demos]
        first = index - index % self.chain
        for member in range(first, index):
            done = self._done.get(member)
            shown.append((texts[member], done.pairs if done else []))
        return shown

    def process(self, inputs: StepInput) -> StepOutput:
        texts: dict[int, str] = {}
        for row in (r for r in inputs if r["text"]):
            first = row["row_index"] - row["row_index"] % self.chain
            texts.update({first + k: t for k, t in enumerate(row["earlier"] or [])})
            texts[row["row_index"]] = row["text"]
        prompts: dict[int, synth.Prompt] = {}
        for position in range(self.chain):  # in rounds: earlier members first
            todo = sorted(i for i in texts if i % self.chain == position and i not in self._done)
            for i in todo:
                prompts[i] = synth.render(
                    texts[i],
                    self._earlier(i, texts),
                    budget_words=self.budget_words,
                    bos=self.bos,
                )
            outputs = self._complete(
                [prompts[i].text for i in todo], [{"row_index": i} for i in todo], "synth",
                self.sampling,
            )  # fmt: skip
            for i, out in zip(todo, outputs, strict=True):
                text = out["generations"][0]
                self._done[i] = None if text is None else synth.parse_pairs(text)
        rows = []
        for row in inputs:
            index = row["row_index"]
            parsed = self._done.get(index)
            prompt = prompts.get(index) or synth.render(  # done by an earlier batch
                row["text"], self._earlier(index, texts), budget_words=self.budget_words,
                bos=self.bos,
            )  # fmt: skip
            new = {
                **row,
                "uuid": row_uuid(self.fingerprint, index),
                "model": self.model_id,
                "system_prompt": None,
                "dropped_reason": None,
                "pairs": None,
                "conversation": None,
                "instruction": None,
                "response": None,
                "num_turns": None,
                "synth": None,
            }
            if not row["text"]:  # past the end of the corpus (target `kept`)
                new["dropped_reason"] = "no_text"
            elif parsed is not None:
                new["synth"] = {
                    "shots": prompt.shots,
                    "prompt_words": prompt.words,
                    "dropped": counts_list(parsed.dropped),
                }
                if parsed.pairs:
                    convo = synth.conversation(row["text"], parsed.pairs)
                    new["pairs"], new["conversation"] = parsed.pairs, convo
                    new["instruction"], new["response"] = convo[0]["content"], convo[1]["content"]
                    new["num_turns"] = len(parsed.pairs)
                else:
                    new["dropped_reason"] = "no_pairs"
            rows.append(new)
        yield rows
