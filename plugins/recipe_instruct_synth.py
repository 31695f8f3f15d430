"""Recipe `instruct-synth`: Instruction Pre-Training's synthesizer (arXiv 2406.14491).

A synthesizer model reads each raw text (`<s> <CON> text </CON>`) and writes
instruction-response pairs about it (`<QUE> q <ANS> a </END>`). Texts too long for the
engine's context are split first; row i is the corpus' i-th piece. Views: `pairs` (a text
with its pairs and their conversation) and `pretrain` (the text followed by its pairs).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilabel.steps.generators.data import LoadDataFromDicts
from magpie_hub_plugins.recipe_lamini import COUNTS, default_rows, describe_source
from pydantic import Field, model_validator

from magpie_hub.config import RunConfig, SamplingConfig
from magpie_hub.errors import ConfigError
from magpie_hub.generate.inputs import Texts, TextSource
from magpie_hub.generate.seeded_tasks import SynthesizePairs
from magpie_hub.hookspecs import hookimpl
from magpie_hub.prompts import synth
from magpie_hub.prompts.templates import PromptFormat
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

DATA = Path(__file__).parent / "data"
BUILTIN_TEXTS = DATA / "synth_texts.jsonl"
BUILTIN_DEMOS = DATA / "synth_demos.json"
TEXT_COLUMNS = ("text", "content", "document", "raw_text")
WORDS_PER_TOKEN = 1 / 1.5
"""Budget estimate without a tokenizer: 1.5 tokens per word (English is about 1.3)."""
OVERHEAD_WORDS = 8
"""The tags around a text."""


class SynthSampling(SamplingConfig):
    """The synthesizer's sampling (the paper: greedy, 400 new tokens)."""

    temperature: float = Field(0.0, ge=0.0, le=5.0)
    max_new_tokens: int = Field(400, ge=1, le=32768)


PAIRS = [{"question": "string", "answer": "string"}]
FEATURES: RowTypes = {
    "uuid": "string",
    "text": "string",
    "text_index": "int64",
    "piece": "int64",
    "pieces": "int64",
    "pairs": PAIRS,
    "conversation": MESSAGES,
    "instruction": "string",
    "response": "string",
    "num_turns": "int64",
    "synth": {"shots": "int64", "prompt_words": "int64", "dropped": COUNTS},
    "model": "string",
    "inputs": "string",
    "gen_config": {
        "seed": "int64",
        "chain": "int64",
        "demos": "string",
        "max_text_words": "int64",
        "synth": sampling_features(SynthSampling),
    },
}
COLUMNS = [c for c in FEATURES if c not in ("gen_config", "inputs")]
PAIRS_FEATURES: RowTypes = {
    "uuid": "string",
    "text": "string",
    "text_index": "int64",
    "piece": "int64",
    "pairs": PAIRS,
    "conversation": MESSAGES,
}
PRETRAIN_FEATURES: RowTypes = {"uuid": "string", "text": "string"}


class InstructSynthConfig(RunConfig):
    """Config of the `instruct-synth` recipe."""

    recipe: str = "instruct-synth"
    corpus: TextSource = TextSource()
    """Raw texts: a .txt file (one text), a folder of .txt files, a table's `text` column."""
    max_text_words: int | None = Field(None, ge=16)
    """Longer texts are split (paragraphs, sentences, words) into pieces of at most this
    many words; default: what fits the engine's context beside the answer."""
    chain: int = Field(1, ge=1, le=16)
    """Texts per few-shot chain: text k is prompted after texts 0..k-1 of its chain and
    their pairs, while they fit the context (1: each text alone)."""
    demos: str = "none"
    """Fixed examples shown before every text: `none`, `builtin`, or a JSON file of
    [{text, pairs: [{question, answer}]}]."""
    bos: str = synth.BOS
    """The text that opens each block (the synthesizer's `<s>`)."""
    synth: SynthSampling = SynthSampling()

    @model_validator(mode="after")
    def _fits(self) -> InstructSynthConfig:
        if self.max_text_words is not None and self.max_text_words > self.budget_words():
            raise ValueError(
                f"max_text_words ({self.max_text_words}) does not fit the context: at most "
                f"{self.budget_words()} words fit engine.context_length "
                f"{self.engine.context_length} with synth.max_new_tokens "
                f"{self.synth.max_new_tokens}"
            )
        return self

    def budget_words(self) -> int:
        """Words a prompt may hold: the context less the answer's room, in words."""
        room = self.engine.context_length - self.synth.max_new_tokens
        return max(16, int(room * WORDS_PER_TOKEN))

    def piece_words(self) -> int:
        return self.max_text_words or max(16, self.budget_words() - OVERHEAD_WORDS)


def read_corpus(cfg: InstructSynthConfig) -> Texts:
    return cfg.corpus.read(what="texts", columns=TEXT_COLUMNS, builtin=BUILTIN_TEXTS)


def read_demos(cfg: InstructSynthConfig) -> list[dict[str, Any]]:
    if cfg.demos == "none":
        return []
    path = BUILTIN_DEMOS if cfg.demos == "builtin" else Path(cfg.demos).expanduser()
    hint = 'Give a JSON file of [{"text": ..., "pairs": [{"question": ..., "answer": ...}]}].'
    try:
        demos = json.loads(path.read_text(encoding="utf-8"))
        shaped = [
            {"text": d["text"], "pairs": [{"question": p["question"], "answer": p["answer"]}
                                          for p in d["pairs"]]}
            for d in demos
        ]  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"demos: cannot read {path.name} ({type(exc).__name__}: {exc})",
            field="demos",
            hint=hint,
        ) from exc
    return shaped


def pieces(cfg: InstructSynthConfig) -> tuple[list[dict[str, Any]], Texts]:
    """Every piece of the corpus, in order: {text, text_index, piece, pieces}."""
    corpus = read_corpus(cfg)
    out = []
    for n, text in enumerate(corpus.texts):
        parts = synth.split_text(text, cfg.piece_words())
        out += [{"text": p, "text_index": n, "piece": k, "pieces": len(parts)}
                for k, p in enumerate(parts)]  # fmt: skip
    return out, corpus


def check(config: RunConfig, fmt: PromptFormat) -> None:
    """The corpus and demos can be read and give the rows asked for."""
    cfg = recipe_config(config, InstructSynthConfig)
    read_demos(cfg)
    found, corpus = pieces(cfg)
    if cfg.num_rows > len(found):
        raise ConfigError(
            f"num_rows = {cfg.num_rows}, but the corpus gives {len(found)} texts "
            f"({len(corpus.texts)} read, split to at most {cfg.piece_words()} words)",
            field="num_rows",
            hint=f"Set num_rows to at most {len(found)} (`-n {len(found)}`), or give a larger "
            "corpus.",
        )


def build_pipeline(ctx: BuildContext) -> Pipeline:
    cfg = ctx.recipe_config(InstructSynthConfig)
    fmt = ctx.prompt_format()
    found, corpus = pieces(cfg)
    data = []
    for i in ctx.row_indices:
        first = i - i % cfg.chain
        if i < len(found):
            earlier = [found[j]["text"] for j in range(first, i)]
            data.append({"row_index": i, **found[i], "earlier": earlier})
        else:  # target `kept` ran past the corpus: nothing left to read
            empty = {"text": "", "text_index": None, "piece": None, "pieces": None}
            data.append({"row_index": i, **empty, "earlier": []})
    with ctx.pipeline("instruct-synth") as pipeline:
        rows = LoadDataFromDicts(name="rows", data=data, batch_size=cfg.batch_size)
        task = SynthesizePairs(
            name="synthesize",
            llm=ctx.make_llm(),
            sampling=cfg.synth.model_dump(),
            bos=cfg.bos,
            chain=cfg.chain,
            budget_words=cfg.budget_words(),
            demos=read_demos(cfg),
            fingerprint=cfg.fingerprint(),
            model_id=ctx.model.model_id,
            seed=cfg.seed,
            input_batch_size=cfg.batch_size,
            **{**prompt_fields(fmt), "stop": [synth.EOS]},
        )
        sink = WriteChunks(
            name="write",
            chunk_dir=str(ctx.chunk_dir),
            columns=COLUMNS,
            constants={
                "inputs": json.dumps({"corpus": corpus.record}, sort_keys=True),
                "gen_config": {
                    "seed": cfg.seed,
                    "chain": cfg.chain,
                    "demos": cfg.demos,
                    "max_text_words": cfg.piece_words(),
                    "synth": cfg.synth.model_dump(),
                },
            },
            row_types=FEATURES,
            input_batch_size=cfg.batch_size,
        )
        rows >> task >> sink
    return pipeline


def views(rows: Sequence[dict[str, Any]], cfg: RunConfig) -> dict[str, View]:
    """`pairs` (one row per text: its pairs and their conversation) and `pretrain` (the
    text followed by its pairs, one string), made as they are written."""

    def pair_row(r: dict[str, Any], tally: Counter[str]) -> dict[str, Any]:
        tally["pairs"] += len(r["pairs"])
        return {k: r[k] for k in PAIRS_FEATURES}

    def pretrain_row(r: dict[str, Any], _: Counter[str]) -> dict[str, Any]:
        return {"uuid": r["uuid"], "text": synth.pretrain_text(r["text"], r["pairs"])}

    pairs = made_view(rows, pair_row, PAIRS_FEATURES, lambda t: {"pairs": t["pairs"]})
    return {"pairs": pairs, "pretrain": made_view(rows, pretrain_row, PRETRAIN_FEATURES)}


def synth_section(ctx: CardContext) -> str | None:
    if ctx.manifest.get("recipe") != "instruct-synth":
        return None
    rows = default_rows(ctx, ["synth", "inputs", "pairs", "text_index", "gen_config"])
    inputs = json.loads(rows[0]["inputs"]) if rows else {}
    dropped: Counter[str] = Counter()
    for r in rows:
        dropped.update({d["reason"]: d["count"] for d in r["synth"]["dropped"]})
    config = ctx.config
    by_reason = (ctx.manifest.get("counts") or {}).get("dropped_by_reason") or {}
    shots = sum(r["synth"]["shots"] for r in rows)
    lines = [
        "Instruction-response pairs synthesized from raw texts as in Instruction "
        "Pre-Training (arXiv 2406.14491): the synthesizer reads `<s> <CON> text </CON>` and "
        "writes `<QUE> question <ANS> answer </END>` pairs.",
        "",
        f"- Texts: {describe_source(inputs.get('corpus'))}; split to at most "
        f"{rows[0]['gen_config']['max_text_words'] if rows else '?'} words per piece",
        f"- Texts with their pairs here: {len(rows)} pieces of "
        f"{len({r['text_index'] for r in rows})} texts, "
        f"{sum(len(r['pairs']) for r in rows)} pairs",
        f"- Few-shot: chains of {config.get('chain', 1)}, demos `{config.get('demos', 'none')}`"
        f"; {shots} earlier texts and examples shown before the texts in all",
        "- Pairs dropped while parsing: "
        + (", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none"),
        f"- Texts dropped without a usable pair: {by_reason.get('no_pairs', 0)}",
    ]
    return "\n".join(lines)


@hookimpl
def register_recipes(register: Callable[[Recipe], None]) -> None:
    register(
        Recipe(
            name="instruct-synth",
            description="Instruction Pre-Training: a synthesizer writes Q/A pairs about raw "
            "texts; pairs and pretrain views.",
            config_model=InstructSynthConfig,
            build_pipeline=build_pipeline,
            starter_config=Path(__file__).with_suffix(".toml").read_text(encoding="utf-8"),
            features=FEATURES,
            views=views,
            check=check,
        )
    )


@hookimpl
def register_card_sections(register: Callable[[CardSection], None]) -> None:
    register(CardSection(name="instruct-synth", title="Synthesized pairs", render=synth_section))


@hookimpl
def register_review_specs(register: Callable[[ReviewSpec], None]) -> None:
    from magpie_hub.review.settings import single_record, single_settings

    register(ReviewSpec(name="instruct-synth", settings=single_settings, record=single_record))
