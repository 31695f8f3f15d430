"""Recipe `magpie`: single-turn Magpie (an instruction from the pre-query template, its answer)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import field_validator

from magpie_hub.config import InstructionSampling, ResponseSampling, RunConfig
from magpie_hub.errors import UnknownNameError
from magpie_hub.generate.tasks import GenerateExchange
from magpie_hub.hookspecs import hookimpl
from magpie_hub.prompts.system_prompts import SystemPromptSpec, expand
from magpie_hub.prompts.templates import PromptFormat
from magpie_hub.registry import BuildContext, Recipe, ReviewSpec, recipe_config
from magpie_hub.row_types import MESSAGES, RowTypes
from magpie_hub.steps import WriteChunks, prompt_fields, sampling_features

if TYPE_CHECKING:
    from distilabel.pipeline.local import Pipeline

INSTRUCTION_FEATURES = sampling_features(InstructionSampling)
RESPONSE_FEATURES = sampling_features(ResponseSampling)
FEATURES: RowTypes = {
    "uuid": "string",
    "instruction": "string",
    "response": "string",
    "conversation": MESSAGES,
    "system_prompt": "string",
    "system_prompt_key": "string",
    "model": "string",
    "pre_query_template": "string",
    "gen_config": {
        "seed": "int64",
        "instruction": INSTRUCTION_FEATURES,
        "response": RESPONSE_FEATURES,
    },
}
COLUMNS = [
    "uuid",
    "instruction",
    "response",
    "conversation",
    "system_prompt",
    "system_prompt_key",
    "model",
    "pre_query_template",
]


class MagpieConfig(RunConfig):
    """Config of the `magpie` recipe."""

    system_prompt: SystemPromptSpec = None
    """None, one prompt, a list (uniform) or a table name -> {prompt, weight}; `@name` and
    `@library` refer to the built-in category prompts. One is chosen per row."""
    include_system_prompt: bool = True
    """Start the written `conversation` with the row's system prompt."""
    instruction: InstructionSampling = InstructionSampling()
    response: ResponseSampling = ResponseSampling()

    @field_validator("system_prompt")
    @classmethod
    def _known_library_names(cls, value: SystemPromptSpec) -> SystemPromptSpec:
        try:
            expand(value)
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None
        return value


def check_system_prompts(config: RunConfig, fmt: PromptFormat) -> None:
    """Every system prompt of the mix renders (a preset cannot render one)."""
    for _, prompt, _ in expand(recipe_config(config, MagpieConfig).system_prompt):
        fmt.next_user_prompt([], prompt)


def build_pipeline(ctx: BuildContext) -> Pipeline:
    cfg = ctx.recipe_config(MagpieConfig)
    fmt = ctx.prompt_format()
    choices = expand(cfg.system_prompt)
    gen_config = {
        "seed": cfg.seed,
        "instruction": cfg.instruction.model_dump(),
        "response": cfg.response.model_dump(),
    }
    common = {**prompt_fields(fmt), "seed": cfg.seed, "input_batch_size": cfg.batch_size}
    with ctx.pipeline("magpie") as pipeline:
        rows = ctx.row_source()
        exchange = GenerateExchange(
            name="generate",
            llm=ctx.make_llm(),
            system_prompts=[{"key": k, "prompt": p, "weight": w} for k, p, w in choices],
            sampling=cfg.instruction.model_dump(),
            response_sampling=cfg.response.model_dump(),
            fingerprint=cfg.fingerprint(),
            model_id=ctx.model.model_id,
            **common,
        )
        sink = WriteChunks(
            name="write",
            chunk_dir=str(ctx.chunk_dir),
            columns=COLUMNS,
            constants={"gen_config": gen_config},
            system_in_conversation=cfg.include_system_prompt,
            row_types=FEATURES,
            input_batch_size=cfg.batch_size,
        )
        rows >> exchange >> sink
    return pipeline


@hookimpl
def register_recipes(register: Callable[[Recipe], None]) -> None:
    register(
        Recipe(
            name="magpie",
            description="Single-turn Magpie: instruction from the pre-query template, then "
            "the model's answer.",
            config_model=MagpieConfig,
            build_pipeline=build_pipeline,
            starter_config=(Path(__file__).with_suffix(".toml")).read_text(encoding="utf-8"),
            features=FEATURES,
            check=check_system_prompts,
        )
    )


@hookimpl
def register_review_specs(register: Callable[[ReviewSpec], None]) -> None:
    from magpie_hub.review.settings import single_record, single_settings

    register(ReviewSpec(name="magpie", settings=single_settings, record=single_record))
    # `magpie-hub import` builds: the same columns, so the same single-response review.
    register(ReviewSpec(name="import", settings=single_settings, record=single_record))
