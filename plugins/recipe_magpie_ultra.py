"""Recipe `magpie-ultra`: instruct-versus-base response pairs for RLAIF/DPO.

For each Magpie instruction (multi-turn: the last user turn with its history), the
instruct model answers through its chat template (`response`) and a base model answers
through a URIAL prompt (`response_base`); a scorer plugin scores both. The build has
three configs: the full rows (`default`), `sft` and `dpo`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from magpie_hub_plugins.recipe_magpie import (
    INSTRUCTION_FEATURES,
    RESPONSE_FEATURES,
    MagpieConfig,
    check_system_prompts,
)
from magpie_hub_plugins.recipe_magpie_mt import MAGPIE_MT_SYSTEM_PROMPT
from pydantic import Field, ValidationInfo, field_validator

from magpie_hub.config import EngineConfig, ResponseSampling, RunConfig, ScorerConfig, StrictModel
from magpie_hub.errors import ConfigError, UnknownNameError
from magpie_hub.generate.tasks import (
    GenerateBaseResponse,
    GenerateConversation,
    GenerateInstruction,
    GenerateResponse,
)
from magpie_hub.hookspecs import hookimpl
from magpie_hub.plugins import get_registry
from magpie_hub.prompts.system_prompts import expand
from magpie_hub.prompts.urial import UrialTemplate, load_urial, template_markers
from magpie_hub.registry import (
    BuildContext,
    CardSection,
    Recipe,
    ReviewSpec,
    View,
    recipe_config,
)
from magpie_hub.release.card import CardContext
from magpie_hub.row_streams import made_view
from magpie_hub.row_types import MESSAGES, RowTypes
from magpie_hub.steps import WriteChunks, prompt_fields, sampling_features

if TYPE_CHECKING:
    from distilabel.pipeline.local import Pipeline


class BaseSampling(ResponseSampling):
    """The base model's answer (URIAL); `urial_file` replaces the preamble and examples."""

    urial_file: str | None = None


FEATURES: RowTypes = {
    "uuid": "string",
    "instruction": "string",
    "response": "string",
    "response_base": "string",
    "conversation": MESSAGES,
    "num_turns": "int64",
    "system_prompt": "string",
    "system_prompt_key": "string",
    "model": "string",
    "model_base": "string",
    "pre_query_template": "string",
    "base_note": "string",
    "score": "float64",
    "score_base": "float64",
    "score_difference": "float64",
    "score_error": "string",
    "scorer": "string",
    "gen_config": {
        "seed": "int64",
        "instruction": INSTRUCTION_FEATURES,
        "response": RESPONSE_FEATURES,
        "base": sampling_features(BaseSampling),
    },
}
COLUMNS = [c for c in FEATURES if c != "gen_config"]
NULLABLE = ["base_note", "score", "score_base", "score_difference", "score_error"]
SFT_FEATURES: RowTypes = {
    "uuid": "string",
    "instruction": "string",
    "response": "string",
    "conversation": MESSAGES,
    "system_prompt": "string",
    "model": "string",
    "score": "float64",
}
DPO_FEATURES: RowTypes = {
    "uuid": "string",
    "prompt": MESSAGES,
    "chosen": MESSAGES,
    "rejected": MESSAGES,
    "score_chosen": "float64",
    "score_rejected": "float64",
    "margin": "float64",
    "chosen_from": "string",
    "tie": "bool",
    "by_convention": "bool",
}


class DPOConfig(StrictModel):
    """How the `dpo` view treats pairs the scores do not separate."""

    on_tie: Literal["drop", "keep"] = "drop"
    """Equal scores: drop the pair (counted), or keep it with `tie = true`."""
    on_missing_score: Literal["drop", "keep"] = "drop"
    """A score is missing (e.g. an unparseable verdict): drop (counted), or keep with the
    instruct response chosen and `by_convention = true`. With scorer `none` every pair is
    kept that way."""


class UltraConfig(MagpieConfig):
    """Config of the `magpie-ultra` recipe."""

    recipe: str = "magpie-ultra"
    turns: int = Field(1, ge=1, le=8)
    """User turns; with more than one, the pair answers the last one, with its history."""
    base_engine: EngineConfig = EngineConfig()
    """The base model and its engine (configured apart from `engine`; they may differ)."""
    base: BaseSampling = BaseSampling()
    scorer: ScorerConfig = ScorerConfig()
    dpo: DPOConfig = DPOConfig()

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, value: ScorerConfig, info: ValidationInfo) -> ScorerConfig:
        registry = (info.context or {}).get("registry")
        if registry is None:  # validated outside load_config: checked when the pipeline is built
            return value
        try:
            registry.scorer(value.name)
        except UnknownNameError as exc:
            raise ValueError(f"{exc} ({exc.hint})") from None
        return value

    def fingerprint(self) -> str:
        """The config's hash, plus the URIAL file's content (a path alone could change)."""
        digest = hashlib.sha256(super().fingerprint().encode())
        if self.base.urial_file and Path(self.base.urial_file).is_file():
            digest.update(Path(self.base.urial_file).read_bytes())
        return digest.hexdigest()[:16]

    def extra_engines(self) -> dict[str, EngineConfig]:
        engines = {"base": self.base_engine}
        if self.scorer.engine is not None:
            engines["scorer"] = self.scorer.engine
        return engines


def urial_template(cfg: UltraConfig) -> UrialTemplate:
    return load_urial(Path(cfg.base.urial_file)) if cfg.base.urial_file else UrialTemplate()


def build_pipeline(ctx: BuildContext) -> Pipeline:
    cfg = ctx.recipe_config(UltraConfig)
    fmt = ctx.prompt_format()
    choices = expand(cfg.system_prompt)
    base_info = ctx.extra_models["base"]
    urial = urial_template(cfg)
    template_text = base_info.chat_template.source if base_info.chat_template else ""
    markers = template_markers(fmt.pre_query, *fmt.stop, fmt.user_to_assistant, template_text)
    assert ctx.make_extra_llm is not None
    scorer = get_registry().scorer(cfg.scorer.name)
    if cfg.turns > 1 and fmt.chat_template is None:
        raise ConfigError("turns > 1 needs the model's chat template", field="turns")
    common = {**prompt_fields(fmt), "seed": cfg.seed, "input_batch_size": cfg.batch_size}
    with ctx.pipeline("magpie-ultra") as pipeline:
        rows = ctx.row_source()
        if cfg.turns == 1:
            first: Any = GenerateInstruction(
                name="instruction",
                llm=ctx.make_llm(),
                system_prompts=[{"key": k, "prompt": p, "weight": w} for k, p, w in choices],
                sampling=cfg.instruction.model_dump(),
                fingerprint=cfg.fingerprint(),
                model_id=ctx.model.model_id,
                **common,
            )
        else:
            first = GenerateConversation(
                name="conversation",
                llm=ctx.make_llm(),
                turns=cfg.turns,
                end_with_user=True,
                instruction_system_prompt=MAGPIE_MT_SYSTEM_PROMPT,
                instruction_sampling=cfg.instruction.model_dump(),
                response_sampling=cfg.response.model_dump(),
                fingerprint=cfg.fingerprint(),
                model_id=ctx.model.model_id,
                **common,
            )
        response = GenerateResponse(
            name="response", llm=ctx.make_llm(), sampling=cfg.response.model_dump(), **common
        )
        base = GenerateBaseResponse(
            name="response_base",
            llm=ctx.make_extra_llm("base"),
            sampling={k: v for k, v in cfg.base.model_dump().items() if k != "urial_file"},
            preamble=urial.preamble,
            examples=[{"query": q, "answer": a} for q, a in urial.examples],
            markers=list(markers),
            base_model_id=base_info.model_id,
            seed=cfg.seed,
            stop=[],
            pre_query="",
            user_to_assistant="",
            input_batch_size=cfg.batch_size,
        )
        score = scorer.make_step(ctx, cfg.scorer)
        sink = WriteChunks(
            name="write",
            chunk_dir=str(ctx.chunk_dir),
            columns=COLUMNS,
            constants={"gen_config": gen_config(cfg)},
            system_in_conversation=cfg.include_system_prompt,
            row_types=FEATURES,
            nullable=NULLABLE,
            input_batch_size=cfg.batch_size,
        )
        rows >> first >> response >> base >> score >> sink
    return pipeline


def gen_config(cfg: UltraConfig) -> dict[str, Any]:
    return {
        "seed": cfg.seed,
        "instruction": cfg.instruction.model_dump(),
        "response": cfg.response.model_dump(),
        "base": cfg.base.model_dump(),
    }


def views(rows: Sequence[dict[str, Any]], cfg: RunConfig) -> dict[str, View]:
    """`sft` (every pair's instruct side) and `dpo` (chosen/rejected by score), made as they
    are written."""
    cfg = recipe_config(cfg, UltraConfig)
    sft = made_view(rows, lambda r, _: {k: r[k] for k in SFT_FEATURES}, SFT_FEATURES)
    return {"sft": sft, "dpo": made_view(rows, partial(_dpo_row, cfg), DPO_FEATURES, _dpo_counts)}


def _dpo_row(cfg: UltraConfig, r: dict[str, Any], tally: Counter[str]) -> dict[str, Any] | None:
    score, base = r["score"], r["score_base"]
    missing = score is None or base is None
    tie = not missing and score == base
    if (missing and cfg.scorer.name != "none" and cfg.dpo.on_missing_score == "drop") or (
        tie and cfg.dpo.on_tie == "drop"
    ):
        tally["dropped_missing_score" if missing else "dropped_tie"] += 1
        return None
    tally["by_convention"] += missing
    base_wins = not missing and base > score
    answers = [{"role": "assistant", "content": r["response"]}]
    others = [{"role": "assistant", "content": r["response_base"]}]
    chosen, rejected = (others, answers) if base_wins else (answers, others)
    return {
        "uuid": r["uuid"],
        "prompt": r["conversation"][:-1],
        "chosen": chosen,
        "rejected": rejected,
        "score_chosen": None if missing else max(score, base),
        "score_rejected": None if missing else min(score, base),
        "margin": None if missing else abs(score - base),
        "chosen_from": "base" if base_wins else "instruct",
        "tie": tie,
        "by_convention": missing,
    }


def _dpo_counts(tally: Counter[str]) -> dict[str, int]:
    return {k: tally[k] for k in ("dropped_tie", "dropped_missing_score", "by_convention")}


def pairs_section(ctx: CardContext) -> str | None:
    """What the card must say about the pairs: the scorer, and how `dpo` was chosen."""
    if ctx.manifest.get("recipe") != "magpie-ultra":
        return None
    scorer = (ctx.config.get("scorer") or {}).get("name", "none")
    dpo = (ctx.manifest.get("views") or {}).get("dpo", {})
    base = (ctx.manifest.get("extra_models") or {}).get("base", {}).get("id", "?")
    lines = [
        f"`response` is the instruct model's answer; `response_base` is the base model "
        f"`{base}`'s, prompted URIAL-style (plain text, no chat template).",
        "",
        f"Scorer: `{scorer}`. `dpo` has {dpo.get('rows', 0)} pairs; dropped as ties: "
        f"{dpo.get('dropped_tie', 0)}; dropped for a missing score: "
        f"{dpo.get('dropped_missing_score', 0)}.",
    ]
    if dpo.get("by_convention"):
        lines += [
            "",
            f"In {dpo['by_convention']} pairs no score separated the answers: the instruct "
            "response is `chosen` by convention (`by_convention = true`), not by a judgement.",
        ]
    return "\n".join(lines)


@hookimpl
def register_recipes(register: Callable[[Recipe], None]) -> None:
    register(
        Recipe(
            name="magpie-ultra",
            description="Instruct-versus-base response pairs (URIAL for the base model), "
            "scored, with sft and dpo views.",
            config_model=UltraConfig,
            build_pipeline=build_pipeline,
            starter_config=Path(__file__).with_suffix(".toml").read_text(encoding="utf-8"),
            features=FEATURES,
            views=views,
            check=check_system_prompts,
        )
    )


@hookimpl
def register_card_sections(register: Callable[[CardSection], None]) -> None:
    register(CardSection(name="pairs", title="Pairs and preferences", render=pairs_section))


@hookimpl
def register_review_specs(register: Callable[[ReviewSpec], None]) -> None:
    from magpie_hub.review.settings import pair_record, pair_settings

    register(ReviewSpec(name="magpie-ultra", settings=pair_settings, record=pair_record))
