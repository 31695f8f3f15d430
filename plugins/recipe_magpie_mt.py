"""Recipe `magpie-mt`: multi-turn Magpie conversations, every prompt from the chat template."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from magpie_hub_plugins.recipe_magpie import INSTRUCTION_FEATURES, RESPONSE_FEATURES
from pydantic import Field, model_validator

from magpie_hub.config import InstructionSampling, ResponseSampling, RunConfig
from magpie_hub.errors import ChatTemplateError
from magpie_hub.generate.tasks import GenerateConversation
from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import BuildContext, Recipe, ReviewSpec
from magpie_hub.row_types import MESSAGES, RowTypes
from magpie_hub.steps import WriteChunks, prompt_fields

if TYPE_CHECKING:
    from distilabel.pipeline.local import Pipeline

MAGPIE_MT_SYSTEM_PROMPT = (
    "You are a helpful AI assistant. The user will engage in a multi-round conversation with "
    "you, asking initial questions and following up with additional related questions. Your "
    "goal is to provide thorough, relevant and insightful responses to help the user with "
    "their queries."
)
FEATURES: RowTypes = {
    "uuid": "string",
    "conversation": MESSAGES,
    "num_turns": "int64",
    "instruction": "string",
    "response": "string",
    "system_prompt": "string",
    "system_prompt_key": "string",
    "model": "string",
    "pre_query_template": "string",
    "gen_config": {
        "seed": "int64",
        "turns": "int64",
        "instruction": INSTRUCTION_FEATURES,
        "response": RESPONSE_FEATURES,
    },
}
COLUMNS = [
    "uuid",
    "conversation",
    "num_turns",
    "instruction",
    "response",
    "system_prompt",
    "system_prompt_key",
    "model",
    "pre_query_template",
]


class MagpieMTConfig(RunConfig):
    """Config of the `magpie-mt` recipe."""

    recipe: str = "magpie-mt"
    turns: int = Field(3, ge=2, le=8)
    end_with_user: bool = False
    include_system_prompt: bool = False
    instruction_system_prompt: str | None = MAGPIE_MT_SYSTEM_PROMPT
    response_system_prompt: str | None = None
    instruction: InstructionSampling = InstructionSampling()
    response: ResponseSampling = ResponseSampling(max_new_tokens=256)

    @model_validator(mode="after")
    def _warn_long(self) -> MagpieMTConfig:
        if self.turns > 4:
            warnings.warn(
                f"turns = {self.turns}: Magpie conversations lose quality beyond about 4 turns",
                stacklevel=2,
            )
        return self


def build_pipeline(ctx: BuildContext) -> Pipeline:
    cfg = ctx.recipe_config(MagpieMTConfig)
    fmt = ctx.prompt_format()
    if fmt.chat_template is None:
        raise ChatTemplateError(
            ctx.model.model_id,
            "multi-turn needs the model's chat template; a preset has none",
            hint='Use `engine.template = "auto"`, or give `engine.chat_template`.',
        )
    with ctx.pipeline("magpie-mt") as pipeline:
        rows = ctx.row_source()
        conversation = GenerateConversation(
            name="conversation",
            llm=ctx.make_llm(),
            turns=cfg.turns,
            end_with_user=cfg.end_with_user,
            instruction_system_prompt=cfg.instruction_system_prompt,
            response_system_prompt=cfg.response_system_prompt,
            include_system_prompt=cfg.include_system_prompt,
            instruction_sampling=cfg.instruction.model_dump(),
            response_sampling=cfg.response.model_dump(),
            fingerprint=cfg.fingerprint(),
            model_id=ctx.model.model_id,
            seed=cfg.seed,
            input_batch_size=cfg.batch_size,
            **prompt_fields(fmt),
        )
        sink = WriteChunks(
            name="write",
            chunk_dir=str(ctx.chunk_dir),
            columns=COLUMNS,
            constants={
                "gen_config": {
                    "seed": cfg.seed,
                    "turns": cfg.turns,
                    "instruction": cfg.instruction.model_dump(),
                    "response": cfg.response.model_dump(),
                },
            },
            system_in_conversation=cfg.include_system_prompt,
            row_types=FEATURES,
            input_batch_size=cfg.batch_size,
        )
        rows >> conversation >> sink
    return pipeline


@hookimpl
def register_recipes(register: Callable[[Recipe], None]) -> None:
    register(
        Recipe(
            name="magpie-mt",
            description="Multi-turn Magpie: 2 to 8 user turns, each prompt the chat template's "
            "own rendering of the conversation so far.",
            config_model=MagpieMTConfig,
            build_pipeline=build_pipeline,
            starter_config=Path(__file__).with_suffix(".toml").read_text(encoding="utf-8"),
            features=FEATURES,
        )
    )


@hookimpl
def register_review_specs(register: Callable[[ReviewSpec], None]) -> None:
    from magpie_hub.review.settings import single_record, single_settings

    register(ReviewSpec(name="magpie-mt", settings=single_settings, record=single_record))
