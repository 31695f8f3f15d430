"""Run configuration: `magpie-hub.toml` as pydantic models, `load_config`, redaction."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from magpie_hub.config_files import apply_overrides, describe_error, read_toml
from magpie_hub.errors import ConfigValidationError

if TYPE_CHECKING:
    from magpie_hub.registry import Registry

DEFAULT_CONFIG_NAME = "magpie-hub.toml"


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SamplingConfig(StrictModel):
    """Sampling for one generation step."""

    temperature: float = Field(1.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(128, ge=1, le=32768)


class InstructionSampling(SamplingConfig):
    """Instruction step sampling (Magpie: temperature 1.0, top_p 1.0)."""

    stop_at_newline: bool = False
    """End an instruction at its first newline (Magpie's "early stopping"; Magpie turns it
    off for Llama 3.1/3.3 and Gemma 2)."""
    ban_first_tokens: list[str] = Field(default_factory=list)
    """Tokens an instruction may not start with, as text (whitespace ignored). Magpie bans
    markdown headers for Llama 3.1: ["#", "##", "###", "####", "**"]. Engines llamacpp and
    transformers only."""


class ResponseSampling(SamplingConfig):
    """Response step sampling (Magpie: greedy)."""

    temperature: float = Field(0.0, ge=0.0, le=5.0)
    max_new_tokens: int = Field(384, ge=1, le=32768)


class EngineConfig(StrictModel):
    """Which engine runs which model, and how its prompts are formatted."""

    name: str = "llamacpp"
    model: str = "embedded:smollm2"
    template: str = "auto"
    """`auto` derives the pre-query template from the model's chat template; else a preset name."""
    template_system: Literal["default", "none"] = "default"
    """With `auto`: keep (`default`) or leave out (`none`) a system block the template injects."""
    chat_template: str | None = None
    """A Jinja chat template that replaces the model's own."""
    render_date: str | None = None
    """The day a chat template's `strftime_now` renders (YYYY-MM-DD; Llama 3.2/3.3 put it
    in every prompt). Default: the day the build started, kept for its whole life."""

    @field_validator("render_date")
    @classmethod
    def _is_a_day(cls, value: str | None) -> str | None:
        if value is not None:
            from datetime import date

            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError(f"{value!r} is not a date as YYYY-MM-DD") from None
        return value

    context_length: int = Field(2048, ge=256)
    threads: int | None = Field(None, ge=1)
    token: SecretStr | None = None
    """Hugging Face token for gated models (transformers engine). Never written anywhere."""
    base_url: str | list[str] | None = None
    """OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1, or a list of servers of the
    same model: requests are spread over the healthy ones (openai engine)."""
    api_key: SecretStr | None = None
    """Key for that server; default: the MAGPIE_HUB_API_KEY variable. Never written anywhere."""
    request_extra: dict[str, Any] = Field(default_factory=dict)
    """Extra JSON fields for every completion request, e.g. {repeat_penalty = 1.0} (openai)."""
    tokenizer: str | None = None
    """Where a remote model's chat template comes from: a .gguf, a tokenizer folder or a
    tokenizer_config.json (openai engine)."""
    json_mode: Literal["response_format", "json_schema", "grammar", "none"] = "response_format"
    """How the openai engine asks for schema-forced JSON (judges): `response_format` (vLLM's
    and OpenAI-style servers), `json_schema` (llama.cpp's server), `grammar` (GBNF made
    locally, for llama-cpp-python's server) or `none` (parse leniently)."""
    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs one vLLM engine spreads the model over (vllm engine)."""
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    """Share of each GPU's memory one vLLM engine process reserves (vllm engine). Unset:
    vLLM's 0.9 for a lone engine; engines that share a machine's GPUs split 0.9 evenly."""

    @field_validator("base_url")
    @classmethod
    def _urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("the list of servers is empty")
        return value

    def base_urls(self) -> list[str]:
        """The servers as a list, without trailing slashes (empty when none is set)."""
        urls = [self.base_url] if isinstance(self.base_url, str) else self.base_url or []
        return [u.rstrip("/") for u in urls]


class ScorerConfig(StrictModel):
    """How pairs are scored (recipe `magpie-ultra`); `magpie-hub plugins` lists scorers."""

    name: str = "none"
    """`none` (the instruct response is chosen by convention), `reward-model` or `judge`."""
    model: str | None = None
    """reward-model: a sequence-classification model folder or Hub id."""
    engine: EngineConfig | None = None
    """judge: the engine and model that judge (its own table, `[scorer.engine]`)."""
    mode: Literal["absolute", "pairwise"] = "pairwise"
    """judge: rate each response 1-10, or compare the two in both orders."""
    max_new_tokens: int = Field(64, ge=8, le=4096)
    """judge: room for the JSON verdict."""


class CardConfig(StrictModel):
    """What the dataset card says that the build cannot know (publishing only)."""

    pretty_name: str | None = None
    license: str = "other"
    """The data's license; it depends on the model's own license terms."""
    language: list[str] = Field(default_factory=lambda: ["en"])
    task_categories: list[str] = Field(default_factory=lambda: ["text-generation"])
    tags: list[str] = Field(default_factory=list)
    """Extra tags, added to synthetic, magpie, distilabel and magpie-hub."""
    summary: str | None = None
    """A paragraph that opens the card; default: one made from the recipe and model."""


class NearDupConfig(StrictModel):
    """Embedding near-duplicates (tagger `near_dup`)."""

    model: str = "packaged:all-minilm-l6-v2"
    """A sentence-embedding model folder, or `packaged:all-minilm-l6-v2` (PyPI, offline)."""
    threshold: float = Field(0.05, gt=0.0, le=2.0)
    """Squared L2 distance of normalised embeddings (2 - 2 cos) under which rows are duplicates."""
    ivf_above: int = Field(200_000, ge=1)
    """Rows above which an IVF index replaces exact flat search (see benchmarks/bench_dedup.py)."""
    nprobe: int = Field(16, ge=1)


class RewardTagConfig(StrictModel):
    """Reward-model scores (tagger `reward`)."""

    model: str | None = None
    """A transformers sequence-classification reward model folder or Hub id."""
    max_length: int = Field(4096, ge=16)


class CurateConfig(StrictModel):
    """`[curate]`: which taggers run, and the judge model they ask."""

    taggers: list[str] = Field(
        default_factory=lambda: ["quality", "difficulty", "category", "language", "near_dup"]
    )
    """`magpie-hub plugins` lists the taggers."""
    judge: EngineConfig = EngineConfig()
    """The judge's engine and model (`[curate.judge]`); any engine."""
    judge_max_new_tokens: int = Field(256, ge=16, le=8192)
    batch_size: int = Field(16, ge=1, le=4096)
    near_dup: NearDupConfig = NearDupConfig()
    reward: RewardTagConfig = RewardTagConfig()


class FilterRule(StrictModel):
    """Keep rows where `column op value` holds (ordered labels compare by their order)."""

    column: str
    op: Literal[
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "not_in",
        "endswith",
        "not_endswith",
        "not_null",
        "first_of_group",
    ]
    value: Any = None

    def describe(self) -> str:
        if self.op in ("not_null", "first_of_group"):
            return f"{self.column} {self.op}"
        return f"{self.column} {self.op} {self.value!r}"


class FilterConfig(StrictModel):
    """`[filter]`: a preset and/or rules, then the `top_n` longest responses, shuffled."""

    preset: str | None = None
    rules: list[FilterRule] = Field(default_factory=list)
    top_n: int | None = Field(None, ge=1)
    """Keep the N rows with the longest responses (overrides the preset's)."""
    shuffle_seed: int | None = None
    """Shuffle the kept rows with this seed (overrides the preset's)."""


class ReviewConfig(StrictModel):
    """`[review]`: how `publish --review` and `review watch` push rows to Argilla."""

    workspace: str = "magpie-hub"
    annotators: list[str] | None = None
    """Users made members of the workspace; default: every user with the annotator role."""
    min_submitted: int = Field(1, ge=1, le=50)
    """People who review each record (Argilla's task distribution)."""
    suggestions: bool = False
    """Pre-fill the judge's tags and the scorer's choice (off: humans are not anchored)."""
    sample: int | None = Field(None, ge=1)
    """Push this many rows (seeded); default: all."""
    seed: int = Field(0, ge=0)
    """Seeds the sample and the A/B order of blind pairs."""


class ExecutionConfig(StrictModel):
    """Where the pipeline's steps run; not part of the build identity (same rows either way)."""

    backend: Literal["local", "ray"] = "local"
    """`local`: one process per step on this machine. `ray`: each step a Ray actor."""
    address: str | None = None
    """Ray cluster to join (e.g. `ray://10.0.0.5:10001` or `10.0.0.5:6379`); default: a
    local Ray runtime started for the run and stopped after it."""
    replicas: dict[str, int] = Field(default_factory=dict)
    """Step name -> copies of that step, each with its own engine (e.g. {generate = 2})."""

    @field_validator("replicas")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for step, count in value.items():
            if count < 1:
                raise ValueError(f"replicas of step {step!r} must be at least 1, not {count}")
        return value


class RunConfig(StrictModel):
    """Fields every recipe shares. Recipes subclass this with their own sections."""

    recipe: str = "magpie"
    num_rows: int = Field(20, ge=1)
    target: Literal["attempts", "kept"] = "attempts"
    """`attempts`: num_rows rows are attempted, dropped ones are counted, not replaced.
    `kept`: new rows are attempted until num_rows are kept, at most `max_attempts`."""
    max_attempts: int | None = Field(None, ge=1)
    """With target `kept`: the most rows ever attempted (default: twice num_rows)."""
    seed: int = Field(42, ge=0, lt=2**31)
    batch_size: int = Field(8, ge=1, le=4096)
    """Rows per pipeline batch; also the unit a resumed run keeps or redoes."""
    engine: EngineConfig = EngineConfig()
    card: CardConfig = CardConfig()
    curate: CurateConfig | None = None
    """Tagging after generation (`magpie-hub curate`); not part of the build identity."""
    filter: FilterConfig | None = None
    """Rules that make the `filtered` view from the curated rows."""
    review: ReviewConfig = ReviewConfig()
    """Human review in Argilla; not part of the build identity."""
    views: list[Literal["sharegpt", "alpaca"]] = Field(default_factory=list)
    """Training-ready views written beside the rows (`generate/training_views.py`)."""
    execution: ExecutionConfig = ExecutionConfig()
    """Local processes or a Ray cluster (`--ray`)."""

    @model_validator(mode="after")
    def _attempts_cover_the_rows(self) -> RunConfig:
        if self.max_attempts is not None and self.max_attempts < self.num_rows:
            raise ValueError(
                f"max_attempts ({self.max_attempts}) is below num_rows ({self.num_rows})"
            )
        return self

    def attempt_limit(self) -> int:
        """The most row indices a build may attempt."""
        if self.target == "attempts":
            return self.num_rows
        return self.max_attempts or 2 * self.num_rows

    def extra_engines(self) -> dict[str, EngineConfig]:
        """Engines besides `engine` that the recipe runs (e.g. a base model), by name."""
        return {}

    def fingerprint(self) -> str:
        """Hash of everything that shapes the generated rows (how many, card, curate and
        filter excluded: row i is the same row whatever the count)."""
        data = redacted_dump(self)
        later = ("card", "curate", "filter", "review", "views")  # applied to finished rows
        for key in ("num_rows", "target", "max_attempts", "execution", *later):
            data.pop(key, None)
        data["engine"].pop("json_mode", None)  # judges only; generation never forces JSON
        data["engine"].pop("tensor_parallel_size", None)  # how, not what, is computed
        _drop_everywhere(data, "gpu_memory_utilization")  # every engine's, extra ones too
        if data["engine"].get("base_url") is not None:  # where (unset: as in 0.2.0's)
            data["engine"].pop("base_url")
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _drop_everywhere(data: Any, key: str) -> None:
    """Remove `key` from every dict nested in `data`."""
    if isinstance(data, dict):
        data.pop(key, None)
        for value in data.values():
            _drop_everywhere(value, key)
    elif isinstance(data, list):
        for value in data:
            _drop_everywhere(value, key)


def redacted_dump(model: BaseModel) -> dict[str, Any]:
    """The model as JSON-ready data with every secret field removed, set or not."""
    data: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        if "SecretStr" in str(info.annotation):
            continue
        data[name] = _plain(getattr(model, name))
    return data


def _plain(value: Any) -> Any:
    """Config values as JSON-ready data: nested models (in tables and lists too) redacted."""
    if isinstance(value, BaseModel):
        return redacted_dump(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def validate(
    data: dict[str, Any],
    model: type[RunConfig],
    path: Path | None = None,
    registry: Registry | None = None,
) -> RunConfig:
    """Validate `data` as `model`; validators that check plugin names read `registry` from
    the validation context (never a global)."""
    try:
        return model.model_validate(data, context={"registry": registry})
    except ValidationError as exc:
        raise ConfigValidationError(
            path, [describe_error(model, err) for err in exc.errors()]
        ) from None


def load_config(
    path: Path,
    registry: Registry,
    *,
    overrides: list[str] | None = None,
    num_rows: int | None = None,
) -> RunConfig:
    """Read, override and validate a config with the model of the recipe it names."""
    data = apply_overrides(read_toml(path), overrides or [])
    if num_rows is not None:
        data["num_rows"] = num_rows
    recipe_name = data.get("recipe", RunConfig.model_fields["recipe"].default)
    if not isinstance(recipe_name, str):
        raise ConfigValidationError(path, [("recipe", f"must be a string, got {recipe_name!r}")])
    recipe = registry.recipe(recipe_name)
    return validate(data, recipe.config_model, path, registry)
