"""Built-in taggers, registered through `register_taggers` like any plugin's.

Judge tags (quality, difficulty, category, safety) ask `[curate.judge]`; language uses
lingua (offline); reward a transformers sequence classifier; near_dup the packaged
all-MiniLM-L6-v2 embeddings, FAISS and union-find. Column names are Magpie's.

(No `from __future__ import annotations`: distilabel reads `StepInput` at run time.)
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from magpie_hub.config import CurateConfig
from magpie_hub.curate.judge import JUDGE_TASKS, GuardTags, JudgeTags
from magpie_hub.curate.kit import ERROR, TagContext, TagStep
from magpie_hub.curate.neardup import Embedder, model_path, neighbours
from magpie_hub.errors import ConfigError, ModelNotFoundError
from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import Tagger

STRING = "string"


def _generator(column: str) -> dict[str, Any]:
    return {column: STRING}


def judge_tagger(name: str, columns: dict[str, Any], generator: str, description: str) -> Tagger:
    def make(ctx: TagContext) -> JudgeTags:
        return JudgeTags(
            name=f"tag_{name}",
            tagger=name,
            task=name,
            max_new_tokens=ctx.config.judge_max_new_tokens,
            input_batch_size=ctx.config.batch_size,
            **ctx.judge_fields(),
        )

    return Tagger(
        name=name,
        description=description,
        columns={**columns, generator: STRING},
        stored=columns,
        make_step=make,
        finalize=_with_judge(generator),
        uses_judge=True,
        options=lambda cfg: cfg.judge_max_new_tokens,
    )


def _with_judge(generator: str) -> Callable[[Any, TagContext], list[dict]]:
    """Adds `<tag>_generator` (the judge's model id) to rows that got the tag."""

    def finalize(table: Any, ctx: TagContext) -> list[dict[str, Any]]:
        rows = table.drop_columns(["uuid"]).to_pylist()
        return [
            {
                **{k: v for k, v in r.items() if k != ERROR},
                generator: None if r[ERROR] else ctx.judge_id,
            }
            for r in rows
        ]

    return finalize


class LanguageTags(TagStep):
    """ISO 639-1 code (upper case, as Magpie's sets) of the instruction, by lingua."""

    _detector: Any = PrivateAttr(None)

    def load(self) -> None:
        super().load()
        from lingua import LanguageDetectorBuilder

        self._detector = (
            LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
        )

    def tag(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = self._detector.detect_languages_in_parallel_of([r["instruction"] for r in rows])
        return [
            {
                "language": lang.iso_code_639_1.name if lang else None,
                ERROR: None if lang else "undetected",
            }
            for lang in found
        ]


class RewardTags(TagStep):
    """A reward model's score of the instruct answer (and of the base answer, for pairs)."""

    model_path: str
    max_length: int = 4096
    has_base: bool = False
    _scorer: Any = PrivateAttr(None)

    def load(self) -> None:
        super().load()
        from magpie_hub_plugins.scorers import RewardModelScore

        self._scorer = RewardModelScore(
            name="rm", model_path=self.model_path, max_length=self.max_length
        )
        self._scorer.load()

    def tag(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            convo = [
                {"role": "user", "content": row["instruction"]},
                {"role": "assistant", "content": row["response"] or ""},
            ]
            value = {"instruct_reward": self._scorer.score(convo), ERROR: None}
            if self.has_base:
                base = row.get("response_base")
                score = (
                    self._scorer.score([convo[0], {"role": "assistant", "content": base}])
                    if base
                    else None
                )
                value["base_reward"] = score
                value["reward_difference"] = (
                    round(value["instruct_reward"] - score, 6) if score is not None else None
                )
            out.append(value)
        return out


def check_reward(cfg: CurateConfig) -> None:
    model = cfg.reward.model
    if not model:
        raise ConfigError(
            "tagger 'reward' needs curate.reward.model",
            field="curate.reward.model",
            hint="Set it to a sequence-classification reward model, e.g. "
            '"sfairXC/FsfairX-LLaMA3-RM-v0.1".',
        )
    looks_local = model.startswith(("/", ".", "~")) or model.count("/") != 1
    if looks_local and not Path(model).expanduser().exists():
        raise ModelNotFoundError(model, hint="Give a reward model folder or a Hub id NS/NAME.")


def make_reward(ctx: TagContext) -> RewardTags:
    cfg = ctx.config.reward
    assert cfg.model is not None  # check_reward ran before any work
    return RewardTags(
        name="tag_reward",
        tagger="reward",
        model_path=cfg.model,
        max_length=cfg.max_length,
        has_base=ctx.has_base,
        input_batch_size=ctx.config.batch_size,
    )


def reward_finalize(table: Any, ctx: TagContext) -> list[dict[str, Any]]:
    model = ctx.config.reward.model
    rows = table.to_pylist()
    keep = (
        ("instruct_reward", "base_reward", "reward_difference")
        if ctx.has_base
        else ("instruct_reward",)
    )
    return [{**{k: r.get(k) for k in keep}, "reward_model": model} for r in rows]


class EmbedTags(TagStep):
    """Normalised sentence embeddings of the instruction (cached per chunk in the store)."""

    model_path: str
    _embed: Any = PrivateAttr(None)

    def load(self) -> None:
        super().load()
        self._embed = Embedder(model_path(self.model_path))

    def tag(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        vectors = self._embed([r["instruction"] for r in rows])
        return [{"embedding": v.tolist(), ERROR: None} for v in vectors]


def near_dup_finalize(table: Any, ctx: TagContext) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    cfg = ctx.config.near_dup
    blocks = [  # views of the store's buffers: no copy but the FAISS index
        chunk.flatten().to_numpy(zero_copy_only=False).reshape(len(chunk), -1)
        for chunk in table.column("embedding").chunks
        if len(chunk)
    ]
    found = neighbours(blocks, cfg.threshold, ivf_above=cfg.ivf_above, nprobe=cfg.nprobe)
    distance = found.min_distance
    return pa.table(
        {
            "min_neighbor_distance": pa.array(distance, mask=np.isnan(distance)),
            "repeat_count": pa.array(found.repeat_count, pa.int64()),
            "min_similar_uuid": pc.take(table.column("uuid"), pa.array(found.group_root)),
        }
    )


@hookimpl
def register_taggers(register: Callable[[Tagger], None]) -> None:
    register(
        judge_tagger(
            "quality",
            {"input_quality": STRING, "quality_explanation": STRING},
            "quality_generator",
            "The judge rates how clear, specific and coherent the instruction is.",
        )
    )
    register(
        judge_tagger(
            "difficulty",
            {"intent": STRING, "knowledge": STRING, "difficulty": STRING},
            "difficulty_generator",
            "The judge states intent, knowledge needed and difficulty.",
        )
    )
    register(
        judge_tagger(
            "category",
            {"task_category": STRING, "other_task_category": [STRING]},
            "task_category_generator",
            "The judge picks the task category (and other categories).",
        )
    )
    register(
        Tagger(
            name="safety",
            description="A Llama-Guard-style verdict on (instruction, response) by the judge.",
            columns={"safety": STRING, "hazard_category": STRING, "safety_generator": STRING},
            stored={"safety": STRING, "hazard_category": STRING},
            make_step=lambda ctx: GuardTags(
                name="tag_safety",
                tagger="safety",
                max_new_tokens=16,
                input_batch_size=ctx.config.batch_size,
                **ctx.judge_fields(),
            ),
            finalize=_with_judge("safety_generator"),
            uses_judge=True,
        )
    )
    register(
        Tagger(
            name="language",
            description="ISO 639-1 language of the instruction, by lingua (offline).",
            columns={"language": STRING},
            make_step=lambda ctx: LanguageTags(
                name="tag_language", tagger="language", input_batch_size=ctx.config.batch_size
            ),
        )
    )
    register(
        Tagger(
            name="reward",
            description="Reward-model score of the response (and the base response, for pairs).",
            columns={
                "instruct_reward": "float64",
                "base_reward": "float64",
                "reward_difference": "float64",
                "reward_model": STRING,
            },
            stored={
                "instruct_reward": "float64",
                "base_reward": "float64",
                "reward_difference": "float64",
            },
            make_step=make_reward,
            finalize=reward_finalize,
            check=check_reward,
            options=lambda cfg: [cfg.reward.model, cfg.reward.max_length],
        )
    )
    register(
        Tagger(
            name="near_dup",
            description="Embedding near-duplicates: FAISS neighbours, one survivor per group.",
            columns={
                "min_neighbor_distance": "float64",
                "repeat_count": "int64",
                "min_similar_uuid": STRING,
            },
            stored={"embedding": ["float32"]},
            make_step=lambda ctx: EmbedTags(
                name="tag_near_dup",
                tagger="near_dup",
                model_path=ctx.config.near_dup.model,
                input_batch_size=ctx.config.batch_size,
            ),
            finalize=near_dup_finalize,
            whole_build=True,
            options=lambda cfg: cfg.near_dup.model,
        )
    )


JUDGE_TAGGERS = sorted(JUDGE_TASKS)
