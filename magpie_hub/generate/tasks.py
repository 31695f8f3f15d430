"""distilabel tasks that generate Magpie turns from raw prompt text.

(No `from __future__ import annotations` here: distilabel reads the `StepInput`
type hint of `process` at run time.)
"""

from collections.abc import Callable
from typing import Any

from distilabel.steps.base import StepInput
from distilabel.steps.tasks.base import Task
from distilabel.typing import StepColumns, StepOutput

from magpie_hub.prompts.chat_template import ChatTemplate
from magpie_hub.prompts.system_prompts import choose
from magpie_hub.prompts.templates import PromptFormat
from magpie_hub.prompts.urial import STOP as URIAL_STOP
from magpie_hub.prompts.urial import UrialTemplate, clean_base_response, find_chat_tokens
from magpie_hub.steps import check_instruction, row_seed, row_uuid

SystemOf = Callable[[dict[str, Any]], "str | None"]
"""Gives the system prompt to render for a row."""


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
    render_date: str | None = None

    def prompt_format(self) -> PromptFormat:
        template = (
            ChatTemplate(self.chat_template, self.bos_token, self.eos_token, self.render_date)
            if self.chat_template
            else None
        )
        return PromptFormat(self.pre_query, tuple(self.stop), self.user_to_assistant, "", template)

    def format_input(self, input: dict[str, Any]) -> str:
        """The prompt for the next user turn of this row."""
        return self.prompt_format().next_user_prompt(input.get("conversation") or [])

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict:
        return {"text": output}

    def first_turn(
        self,
        rows: StepInput,
        fingerprint: str,
        model_id: str,
        choices: list[dict[str, Any]],
        system_for_prompt: SystemOf | None = None,
    ) -> list[dict[str, Any]]:
        """Rows about to get their first turn: ids, and a system prompt chosen per row."""
        fmt, started = self.prompt_format(), []
        options = [(c["key"], c["prompt"], c["weight"]) for c in choices]
        for row in rows:
            key, prompt = choose(options, row_seed(self.seed, row["row_index"], "system"))
            new = {
                **row,
                "conversation": [],
                "dropped_reason": None,
                "system_prompt": prompt,
                "system_prompt_key": key,
                "uuid": row_uuid(fingerprint, row["row_index"]),
                "model": model_id,
            }
            shown = (system_for_prompt or row_system)(new)
            started.append({**new, "pre_query_template": fmt.next_user_prompt([], shown)})
        return started

    def instruction_turn(
        self, rows: list[dict[str, Any]], turn: int, system: SystemOf, sampling: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Append a generated user message to every live row's conversation."""
        fmt = self.prompt_format()

        def settle(row: dict[str, Any], out: dict[str, Any]) -> None:
            text, reason = check_instruction(out["generations"][0], out["finish_reason"][0])
            row["dropped_reason"] = reason
            row["conversation"] = (
                [*row["conversation"], {"role": "user", "content": text}] if text else None
            )

        return self._turn(
            rows,
            f"i{turn}",
            sampling,
            lambda r: fmt.next_user_prompt(r["conversation"], system(r)),
            settle,
        )

    def response_turn(
        self, rows: list[dict[str, Any]], turn: int, system: SystemOf, sampling: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Append the model's answer to every live row's conversation."""
        fmt = self.prompt_format()

        def settle(row: dict[str, Any], out: dict[str, Any]) -> None:
            response = (out["generations"][0] or "").strip()
            if response:
                answer = {"role": "assistant", "content": response}
                row["conversation"] = [*row["conversation"], answer]
            else:
                row["dropped_reason"], row["conversation"] = "empty_response", None

        return self._turn(
            rows,
            f"r{turn}",
            sampling,
            lambda r: fmt.response_prompt(r["conversation"], system(r)),
            settle,
        )

    def _turn(
        self,
        rows: list[dict[str, Any]],
        key: str,
        sampling: dict[str, Any],
        prompt_of: Callable[[dict[str, Any]], str],
        settle: Callable[[dict[str, Any], dict[str, Any]], None],
    ) -> list[dict[str, Any]]:
        """Generate for every live row (in place) and let `settle` apply each output."""
        todo = [r for r in rows if _live(r)]
        outputs = self._complete([prompt_of(r) for r in todo], todo, key, sampling)
        for row, out in zip(todo, outputs, strict=True):
            settle(row, out)
        return rows

    def _complete(
        self, prompts: list[str], rows: list[dict[str, Any]], key: str, sampling: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not prompts:
            return []
        sampling = dict(sampling)
        stop = sampling.pop("stop", self.stop)
        stop = [*stop, "\n"] if sampling.pop("stop_at_newline", False) else stop
        return self.llm.generate_outputs(
            inputs=prompts,
            num_generations=1,
            seeds=[row_seed(self.seed, r["row_index"], key) for r in rows],
            stop=stop,
            **sampling,
        )


def row_system(row: dict[str, Any]) -> str | None:
    """The system prompt chosen for this row."""
    return row.get("system_prompt")


def _live(row: dict[str, Any]) -> bool:
    return not row.get("dropped_reason") and row.get("conversation") is not None


def _turn_columns(row: dict[str, Any], turn: int = 0) -> dict[str, Any]:
    """`instruction` and `response` of one turn (default the first; -1 the last), read from
    the conversation, and `num_turns`."""
    convo = row.get("conversation") or []
    users = [m["content"] for m in convo if m["role"] == "user"]
    answers = [m["content"] for m in convo if m["role"] == "assistant"]
    return {
        "instruction": users[turn] if users else row.get("instruction"),
        "response": answers[turn] if answers else None,
        "num_turns": len(users),
    }


FIRST_TURN_COLUMNS = ["uuid", "model", "system_prompt", "system_prompt_key", "pre_query_template"]


class GenerateInstruction(_RawTextTask):
    """Magpie step 1: the model sees only the pre-query template and writes a user turn."""

    sampling: dict[str, Any]
    system_prompts: list[dict[str, Any]] = [{"key": None, "prompt": None, "weight": 1.0}]
    """{key, prompt, weight} choices, one picked per row (`magpie_hub.prompts.system_prompts`)."""
    fingerprint: str
    model_id: str

    @property
    def inputs(self) -> StepColumns:
        return ["row_index"]

    @property
    def outputs(self) -> StepColumns:
        return ["instruction", "conversation", "dropped_reason", *FIRST_TURN_COLUMNS]

    def process(self, inputs: StepInput) -> StepOutput:
        rows = self.first_turn(inputs, self.fingerprint, self.model_id, self.system_prompts)
        rows = self.instruction_turn(rows, 1, row_system, self.sampling)
        yield [{**r, "instruction": _turn_columns(r)["instruction"]} for r in rows]


class GenerateResponse(_RawTextTask):
    """Magpie step 2: answer the last user turn through the model's chat template.

    Sets `instruction` and `response` to that last exchange, and `num_turns`."""

    sampling: dict[str, Any]

    @property
    def inputs(self) -> StepColumns:
        return ["row_index", "conversation", "dropped_reason", "system_prompt"]

    @property
    def outputs(self) -> StepColumns:
        return ["instruction", "response", "num_turns", "conversation", "dropped_reason"]

    def process(self, inputs: StepInput) -> StepOutput:
        rows = self.response_turn([dict(r) for r in inputs], 1, row_system, self.sampling)
        yield [{**r, **_turn_columns(r, -1)} for r in rows]


class GenerateExchange(GenerateInstruction):
    """Magpie in one step: the user turn from the pre-query template (sampled with
    `sampling`), then the model's answer to it, by the same engine (the answer's prompt
    starts with the text the engine just read and wrote; one engine, not two)."""

    response_sampling: dict[str, Any]

    @property
    def outputs(self) -> StepColumns:
        return ["response", "num_turns", *super().outputs]

    def process(self, inputs: StepInput) -> StepOutput:
        rows = self.first_turn(inputs, self.fingerprint, self.model_id, self.system_prompts)
        rows = self.instruction_turn(rows, 1, row_system, self.sampling)
        rows = self.response_turn(rows, 1, row_system, self.response_sampling)
        yield [{**r, **_turn_columns(r)} for r in rows]


class GenerateConversation(_RawTextTask):
    """Multi-turn Magpie with one model: instruction and response turns in sequence."""

    turns: int
    end_with_user: bool = False
    instruction_system_prompt: str | None = None
    response_system_prompt: str | None = None
    include_system_prompt: bool = False
    """Record the response system prompt as the row's `system_prompt`."""
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
            "instruction",
            "response",
            "num_turns",
            *FIRST_TURN_COLUMNS,
        ]

    def process(self, inputs: StepInput) -> StepOutput:
        shown = self.response_system_prompt if self.include_system_prompt else None
        choices = [{"key": "response" if shown else None, "prompt": shown, "weight": 1.0}]

        def for_instruction(_: dict[str, Any]) -> str | None:
            return self.instruction_system_prompt

        def for_response(_: dict[str, Any]) -> str | None:
            return self.response_system_prompt

        rows = self.first_turn(inputs, self.fingerprint, self.model_id, choices, for_instruction)
        for turn in range(1, self.turns + 1):
            rows = self.instruction_turn(rows, turn, for_instruction, self.instruction_sampling)
            if turn < self.turns or not self.end_with_user:
                rows = self.response_turn(rows, turn, for_response, self.response_sampling)
        yield [{**r, **_turn_columns(r)} for r in rows]


class GenerateBaseResponse(_RawTextTask):
    """The pair's other half: a base model answers the last user turn, prompted URIAL-style.

    The base prompt is plain text (`magpie_hub.prompts.urial`); one holding chat-template tokens is
    never sent: the row is dropped as `chat_token_in_base_prompt`. Answers that run on into
    a new `# Query` are cut there (`base_note = "run_on"`); empty ones drop the row.
    """

    sampling: dict[str, Any]
    preamble: str
    examples: list[dict[str, str]]
    markers: list[str]
    """Chat-template tokens of the models involved; none may appear in a base prompt."""
    base_model_id: str

    @property
    def inputs(self) -> StepColumns:
        return ["row_index", "conversation", "dropped_reason"]

    @property
    def outputs(self) -> StepColumns:
        return ["response_base", "base_note", "model_base", "dropped_reason"]

    def base_prompt(self, conversation: list[dict[str, str]]) -> str:
        """URIAL prompt for the last user turn of `conversation` (which ends with it)."""
        template = UrialTemplate(
            self.preamble, tuple((e["query"], e["answer"]) for e in self.examples)
        )
        turns = [m for m in conversation if m["role"] != "system"]
        return template.render(turns[-1]["content"], turns[:-1])

    def process(self, inputs: StepInput) -> StepOutput:
        rows = [
            {**r, "response_base": None, "base_note": None, "model_base": self.base_model_id}
            for r in inputs
        ]
        todo, prompts = [], []
        for row in rows:
            if not _live(row):
                continue
            prompt = self.base_prompt(row["conversation"][:-1])  # without the instruct answer
            if find_chat_tokens(prompt, tuple(self.markers)):
                row["dropped_reason"] = "chat_token_in_base_prompt"
                continue
            todo.append(row)
            prompts.append(prompt)
        sampling = {**self.sampling, "stop": list(URIAL_STOP)}
        outputs = self._complete(prompts, todo, "base", sampling) if prompts else []
        for row, out in zip(todo, outputs, strict=True):
            text, note = clean_base_response(out["generations"][0])
            if text is None:
                row["dropped_reason"] = note
            else:
                row["response_base"], row["base_note"] = text, note
        yield rows
