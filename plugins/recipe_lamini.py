"""Recipe `lamini`: LaMini-LM instructions (arXiv 2304.14402), example- and topic-guided.

Each prompt shows three seed instructions (and, topic-guided, three topics) and asks for
`instructions_per_call` new ones in `<example>` tags; rows share a call and take one
parsed instruction each; the instruct model answers each through its chat template.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from magpie_hub.config import ResponseSampling, RunConfig, SamplingConfig
from magpie_hub.generate.inputs import Texts, TextSource
from magpie_hub.generate.seeded_tasks import GenerateListedInstructions
from magpie_hub.generate.tasks import GenerateResponse
from magpie_hub.hookspecs import hookimpl
from magpie_hub.prompts.templates import PromptFormat
from magpie_hub.registry import BuildContext, CardSection, Recipe, ReviewSpec, recipe_config
from magpie_hub.release.card import CardContext
from magpie_hub.row_types import MESSAGES, RowTypes
from magpie_hub.steps import WriteChunks, prompt_fields, sampling_features

if TYPE_CHECKING:
    from distilabel.pipeline.local import Pipeline

DATA = Path(__file__).parent / "data"
BUILTIN_SEEDS = DATA / "lamini_seeds.txt"
BUILTIN_TOPICS = DATA / "lamini_topics.txt"
SEED_COLUMNS = ("instruction", "prompt", "question", "text")
TOPIC_COLUMNS = ("topic", "category", "title", "name", "text")


class ListSampling(SamplingConfig):
    """The instruction-list call (the paper sampled gpt-3.5-turbo; room for 20 items)."""

    temperature: float = Field(0.7, ge=0.0, le=5.0)
    max_new_tokens: int = Field(1024, ge=1, le=32768)


COUNTS = [{"reason": "string", "count": "int64"}]
FEATURES: RowTypes = {
    "uuid": "string",
    "instruction": "string",
    "response": "string",
    "conversation": MESSAGES,
    "source": "string",
    "seed_instructions": ["string"],
    "topics": ["string"],
    "list_call": {
        "index": "int64",
        "position": "int64",
        "items": "int64",
        "dropped": COUNTS,
        "cleaned": COUNTS,
    },
    "model": "string",
    "inputs": "string",
    "gen_config": {
        "seed": "int64",
        "topic_share": "float64",
        "instructions_per_call": "int64",
        "instruction": sampling_features(ListSampling),
        "response": sampling_features(ResponseSampling),
    },
}
COLUMNS = [c for c in FEATURES if c not in ("gen_config", "inputs")]


class LaminiConfig(RunConfig):
    """Config of the `lamini` recipe."""

    recipe: str = "lamini"
    seeds: TextSource = TextSource()
    """Seed instructions: a .txt file holds one per line; a table's `instruction` column."""
    topics: TextSource = TextSource()
    """Topics for topic-guided prompts: one per line, or a table's `topic` column."""
    topic_share: float = Field(0.5, ge=0.0, le=1.0)
    """Share of prompts that are topic-guided (the rest example-guided)."""
    instructions_per_call: int = Field(20, ge=1, le=100)
    """New instructions each prompt asks for (the paper: 20); consecutive rows share it."""
    min_words: int = Field(2, ge=1)
    """Parsed instructions with fewer words are dropped (`too_short`)."""
    instruction: ListSampling = ListSampling()
    response: ResponseSampling = ResponseSampling()


def read_seeds(cfg: LaminiConfig) -> Texts:
    return cfg.seeds.read(
        what="seed instructions", columns=SEED_COLUMNS, builtin=BUILTIN_SEEDS, lines=True
    )


def read_topics(cfg: LaminiConfig) -> Texts | None:
    if cfg.topic_share == 0:
        return None
    return cfg.topics.read(what="topics", columns=TOPIC_COLUMNS, builtin=BUILTIN_TOPICS, lines=True)


def check(config: RunConfig, fmt: PromptFormat) -> None:
    """The seeds (and topics) can be read, before the build folder is touched."""
    cfg = recipe_config(config, LaminiConfig)
    read_seeds(cfg)
    read_topics(cfg)


def build_pipeline(ctx: BuildContext) -> Pipeline:
    cfg = ctx.recipe_config(LaminiConfig)
    fmt = ctx.prompt_format()
    seeds, topics = read_seeds(cfg), read_topics(cfg)
    inputs = {"seeds": seeds.record, "topics": topics.record if topics else None}
    common = {**prompt_fields(fmt), "seed": cfg.seed, "input_batch_size": cfg.batch_size}
    with ctx.pipeline("lamini") as pipeline:
        rows = ctx.row_source()
        listed = GenerateListedInstructions(
            name="instructions",
            llm=ctx.make_llm(),
            sampling=cfg.instruction.model_dump(),
            seeds=seeds.texts,
            topics=topics.texts if topics else [],
            topic_share=cfg.topic_share,
            per_call=cfg.instructions_per_call,
            min_words=cfg.min_words,
            fingerprint=cfg.fingerprint(),
            model_id=ctx.model.model_id,
            chunk_dir=str(ctx.chunk_dir),
            **common,
        )
        response = GenerateResponse(
            name="response", llm=ctx.make_llm(), sampling=cfg.response.model_dump(), **common
        )
        sink = WriteChunks(
            name="write",
            chunk_dir=str(ctx.chunk_dir),
            columns=COLUMNS,
            constants={
                "inputs": json.dumps(inputs, sort_keys=True),
                "gen_config": {
                    "seed": cfg.seed,
                    "topic_share": cfg.topic_share,
                    "instructions_per_call": cfg.instructions_per_call,
                    "instruction": cfg.instruction.model_dump(),
                    "response": cfg.response.model_dump(),
                },
            },
            row_types=FEATURES,
            input_batch_size=cfg.batch_size,
        )
        rows >> listed >> response >> sink
    return pipeline


def default_rows(ctx: CardContext, columns: list[str]) -> Sequence[dict[str, Any]]:
    """Columns of the card's `default` config, read from the release tree batch by batch
    each time they are iterated."""
    from magpie_hub.row_streams import ParquetRows

    stats = ctx.stats.get("default")
    if stats is None:
        return []
    return ParquetRows([ctx.tree / f for f in stats.data_files], columns)


def describe_source(record: dict[str, Any] | None) -> str:
    if not record:
        return "none"
    kind = record.get("kind")
    if kind == "builtin":
        where = "magpie-hub's built-in set"
    elif kind == "hub":
        where = (
            f"Hub dataset `{record.get('repo_id')}` at commit `{str(record.get('commit'))[:12]}`"
        )
    else:
        where = f"{kind} `{record.get('name')}`"
    column = f", column `{record['column']}`" if record.get("column") else ""
    return f"{where}{column}: {record.get('read', 0) - record.get('empty', 0)} entries"


def lamini_section(ctx: CardContext) -> str | None:
    if ctx.manifest.get("recipe") != "lamini":
        return None
    rows = default_rows(ctx, ["source", "list_call", "inputs"])
    inputs = json.loads(rows[0]["inputs"]) if rows else {}
    sources = Counter(r["source"] for r in rows)
    calls = {r["list_call"]["index"]: r["list_call"] for r in rows}
    dropped: Counter[str] = Counter()
    for call in calls.values():
        dropped.update({d["reason"]: d["count"] for d in call["dropped"]})
    counts = ctx.manifest.get("counts") or {}
    by_reason = counts.get("dropped_by_reason") or {}
    lines = [
        "Instructions made as in LaMini-LM (arXiv 2304.14402): three seed instructions, "
        "and for topic-guided prompts three topics, ask for new instructions in "
        "`<example>` tags; the instruct model answers each one.",
        "",
        f"- Seeds: {describe_source(inputs.get('seeds'))}",
        f"- Topics: {describe_source(inputs.get('topics'))}",
        f"- Rows by source: {', '.join(f'`{k}` {v}' for k, v in sorted(sources.items()))}",
        f"- Parse drops over the {len(calls)} calls behind these rows: "
        + (", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none"),
        f"- Rows dropped as duplicates of an earlier instruction (case-insensitive): "
        f"{by_reason.get('duplicate_instruction', 0)}; for a list too short: "
        f"{by_reason.get('short_list', 0)}",
    ]
    return "\n".join(lines)


@hookimpl
def register_recipes(register: Callable[[Recipe], None]) -> None:
    register(
        Recipe(
            name="lamini",
            description="LaMini-LM instructions: example- and topic-guided lists from seed "
            "instructions, answered by the instruct model.",
            config_model=LaminiConfig,
            build_pipeline=build_pipeline,
            starter_config=Path(__file__).with_suffix(".toml").read_text(encoding="utf-8"),
            features=FEATURES,
            check=check,
        )
    )


@hookimpl
def register_card_sections(register: Callable[[CardSection], None]) -> None:
    register(CardSection(name="lamini", title="LaMini instructions", render=lamini_section))


@hookimpl
def register_review_specs(register: Callable[[ReviewSpec], None]) -> None:
    from magpie_hub.review.settings import single_record, single_settings

    register(ReviewSpec(name="lamini", settings=single_settings, record=single_record))
