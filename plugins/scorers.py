"""Built-in pair scorers: `none`, `reward-model` (transformers) and `judge` (an LLM).

Each is a distilabel step that sets `score` (instruct response), `score_base`,
`score_difference` (score - score_base), `score_error` and `scorer` on every live row.
A judge verdict that cannot be parsed leaves both scores empty with
`score_error = "unparseable_judge_output"`: counted, never a crash.

(No `from __future__ import annotations`: distilabel reads `StepInput` at run time.)
"""

import json
import re
from collections.abc import Callable
from typing import Any

from distilabel.steps.base import Step, StepInput
from distilabel.typing import StepColumns, StepOutput
from pydantic import PrivateAttr

from magpie_hub.config import ScorerConfig
from magpie_hub.errors import ConfigError
from magpie_hub.generate.tasks import _RawTextTask
from magpie_hub.hookspecs import hookimpl
from magpie_hub.prompts.templates import resolve
from magpie_hub.registry import BuildContext, Scorer
from magpie_hub.steps import prompt_fields

SCORE_COLUMNS = ["score", "score_base", "score_difference", "score_error", "scorer"]
UNPARSEABLE = "unparseable_judge_output"


def scored(
    row: dict[str, Any], score: float | None, base: float | None, error: str | None, scorer: str
) -> dict[str, Any]:
    both = score is not None and base is not None
    difference = round(score - base, 6) if both else None  # type: ignore[operator]
    return {
        **row,
        "score": score,
        "score_base": base,
        "score_difference": difference,
        "score_error": error,
        "scorer": scorer,
    }


def _live(row: dict[str, Any]) -> bool:
    return not row.get("dropped_reason") and bool(row.get("response_base"))


def pair(row: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The conversation ending with the instruct answer, and the same with the base answer."""
    convo = row["conversation"]
    return convo, [*convo[:-1], {"role": "assistant", "content": row["response_base"]}]


class _ScoreInputs:
    @property
    def inputs(self) -> StepColumns:
        return ["conversation", "response_base", "dropped_reason"]

    @property
    def outputs(self) -> StepColumns:
        return SCORE_COLUMNS


class NoScore(_ScoreInputs, Step):
    """No scores: the instruct response is the chosen one by convention."""

    def process(self, inputs: StepInput) -> StepOutput:
        yield [scored(r, None, None, None, "none") for r in inputs]


class RewardModelScore(_ScoreInputs, Step):
    """A sequence-classification reward model (ArmoRM-style) scores each conversation."""

    model_path: str
    max_length: int = 4096
    _model: Any = PrivateAttr(None)
    _tokenizer: Any = PrivateAttr(None)

    def load(self) -> None:
        super().load()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self._model = AutoModelForSequenceClassification.from_pretrained(self.model_path)
        self._model.eval()

    def score(self, conversation: list[dict[str, str]]) -> float:
        import torch

        tok = self._tokenizer
        if tok.chat_template:
            text = tok.apply_chat_template(conversation, tokenize=False)
        else:
            text = "\n\n".join(f"{m['role']}: {m['content']}" for m in conversation)
        ids = tok(text, return_tensors="pt", truncation=True, max_length=self.max_length)
        with torch.no_grad():
            out = self._model(**ids)
        if getattr(out, "score", None) is not None:  # ArmoRM's custom head
            return round(float(out.score.flatten()[0]), 6)
        logits = out.logits[0]
        return round(float(logits[0] if logits.numel() == 1 else logits[-1]), 6)

    def process(self, inputs: StepInput) -> StepOutput:
        rows = []
        for row in inputs:
            if not _live(row):
                rows.append(scored(row, None, None, None, "reward-model"))
                continue
            instruct, base = pair(row)
            rows.append(scored(row, self.score(instruct), self.score(base), None, "reward-model"))
        yield rows


ABSOLUTE = (
    "You are an impartial judge. Rate how well the assistant's last answer serves the user, "
    "for helpfulness, accuracy, depth and clarity, on a scale from 1 (useless) to 10 "
    "(excellent).\n\n[Conversation]\n{conversation}\n[Answer]\n{answer}\n[End]\n\n"
    'Reply with JSON only, like {{"rating": 7}}.'
)
PAIRWISE = (
    "You are an impartial judge. Two assistants answered the user's last message. Decide "
    "which answer serves the user better, for helpfulness, accuracy, depth and clarity. "
    "Ignore the order and the length of the answers.\n\n[Conversation]\n{conversation}\n"
    "[Answer A]\n{a}\n[Answer B]\n{b}\n[End]\n\n"
    'Reply with JSON only: {{"better": "A"}}, {{"better": "B"}} or {{"better": "tie"}}.'
)
SCHEMAS = {
    "absolute": {
        "type": "object",
        "properties": {"rating": {"type": "integer", "minimum": 1, "maximum": 10}},
        "required": ["rating"],
    },
    "pairwise": {
        "type": "object",
        "properties": {"better": {"type": "string", "enum": ["A", "B", "tie"]}},
        "required": ["better"],
    },
}


def parse_verdict(text: str | None, mode: str) -> Any:
    """The rating (1-10) or the preference ("A", "B", "tie") in a judge's output, or None."""
    for match in re.finditer(r"\{[^{}]*\}", text or ""):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        value = data.get("rating" if mode == "absolute" else "better")
        if mode == "absolute" and isinstance(value, int) and 1 <= value <= 10:
            return value
        if mode == "pairwise" and value in ("A", "B", "tie"):
            return value
    return None


def pairwise_scores(first: str | None, second: str | None) -> tuple[float, float] | None:
    """Combine the verdicts of both orders (first: A = instruct; second: A = base) into
    (score, score_base): 1 point per win, 0.5 per tie, averaged; None if one is missing."""
    if first is None or second is None:
        return None
    points = {"A": 1.0, "tie": 0.5, "B": 0.0}
    instruct = (points[first] + (1.0 - points[second])) / 2
    return instruct, 1.0 - instruct


def transcript(conversation: list[dict[str, str]]) -> str:
    return "\n".join(f"{m['role'].upper()}: {m['content']}" for m in conversation)


class JudgeScore(_ScoreInputs, _RawTextTask):
    """An LLM judge, through its own chat template; JSON output enforced where supported."""

    mode: str
    sampling: dict[str, Any]

    def judge_prompt(self, text: str) -> str:
        return self.prompt_format().response_prompt([{"role": "user", "content": text}], None)

    def process(self, inputs: StepInput) -> StepOutput:
        rows = [dict(r) for r in inputs]
        live = [r for r in rows if _live(r)]
        prompts: list[str] = []
        for row in live:
            instruct, base = pair(row)
            history = transcript(instruct[:-1])
            if self.mode == "absolute":
                prompts += [
                    self.judge_prompt(
                        ABSOLUTE.format(conversation=history, answer=a[-1]["content"])
                    )
                    for a in (instruct, base)
                ]
            else:
                answers = (instruct[-1]["content"], base[-1]["content"])
                prompts += [
                    self.judge_prompt(PAIRWISE.format(conversation=history, a=a, b=b))
                    for a, b in (answers, answers[::-1])
                ]
        sampling = {**self.sampling, "json_schema": json.dumps(SCHEMAS[self.mode])}
        doubled = [r for r in live for _ in (0, 1)]
        outputs = (
            self._complete(prompts, doubled, f"judge-{self.mode}", sampling) if prompts else []
        )
        verdicts = [parse_verdict(o["generations"][0], self.mode) for o in outputs]
        done = {}
        for i, row in enumerate(live):
            v1, v2 = verdicts[2 * i], verdicts[2 * i + 1]
            if self.mode == "absolute":
                pair_scores = (float(v1), float(v2)) if v1 is not None and v2 is not None else None
            else:
                pair_scores = pairwise_scores(v1, v2)
            error = None if pair_scores else UNPARSEABLE
            score, score_base = pair_scores or (None, None)
            done[id(row)] = scored(row, score, score_base, error, f"judge-{self.mode}")
        yield [done.get(id(r)) or scored(r, None, None, None, f"judge-{self.mode}") for r in rows]


def make_none(ctx: BuildContext, cfg: ScorerConfig) -> Step:
    return NoScore(name="score", input_batch_size=ctx.config.batch_size)


def make_reward_model(ctx: BuildContext, cfg: ScorerConfig) -> Step:
    if not cfg.model:
        raise ConfigError(
            "scorer 'reward-model' needs scorer.model",
            field="scorer.model",
            hint='Set it to a sequence-classification model, e.g. "RLHFlow/ArmoRM-Llama3-8B-v0.1".',
        )
    return RewardModelScore(
        name="score", model_path=cfg.model, input_batch_size=ctx.config.batch_size
    )


def make_judge(ctx: BuildContext, cfg: ScorerConfig) -> Step:
    if cfg.engine is None or ctx.make_extra_llm is None:
        raise ConfigError(
            "scorer 'judge' needs its engine: a [scorer.engine] table",
            field="scorer.engine",
            hint='Add [scorer.engine] with name and model, e.g. name = "llamacpp".',
        )
    info = ctx.extra_models["scorer"]
    fmt = resolve(cfg.engine.template, info.chat_template, model=info.model_id)
    return JudgeScore(
        name="score",
        llm=ctx.make_extra_llm("scorer"),
        mode=cfg.mode,
        sampling={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": cfg.max_new_tokens},
        seed=ctx.config.seed,
        input_batch_size=ctx.config.batch_size,
        **prompt_fields(fmt),
    )


BUILTIN: list[tuple[str, str, Callable[[BuildContext, ScorerConfig], Step]]] = [
    ("none", "No scores; the instruct response is chosen by convention.", make_none),
    ("reward-model", "A transformers sequence-classification reward model.", make_reward_model),
    ("judge", "An LLM judge: absolute 1-10 ratings, or pairwise in both orders.", make_judge),
]


@hookimpl
def register_scorers(register: Callable[[Scorer], None]) -> None:
    for name, description, factory in BUILTIN:
        register(Scorer(name=name, description=description, make_step=factory))
