"""The curate stage: tag a finished build's rows, then write the `filtered` view.

plan_curate checks everything before any work (taggers known, judge loadable, filter
rules on columns that will exist). run_curate runs a distilabel pipeline over the rows
that still lack a tag (TagRows -> one step per tagger -> WriteTags), so a re-run after a
kill computes only what no committed chunk holds. It then rewrites the top-level shards
one at a time with every tagger's stored values joined on (`join.TagJoin`), the filter
seeing each shard's rows as they pass, writes the kept rows as the `filtered` view and
records it all in the manifest. Only narrow per-row arrays (uuids, store positions, the
filter's survivors) span the whole build, except for `whole_build` taggers.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magpie_hub.build import BuildFolder
from magpie_hub.config import CurateConfig, ExecutionConfig, FilterConfig, redacted_dump
from magpie_hub.curate.filters import FilterPass, FilterPlan, plan_filter
from magpie_hub.curate.join import TagJoin, build_uuids
from magpie_hub.curate.kit import TagContext, WriteTags
from magpie_hub.curate.store import CommittedCount, TagStore, cache_key, store_features
from magpie_hub.curate.tag_rows import TagRows
from magpie_hub.errors import BuildFolderError
from magpie_hub.execution import (
    connect_ray,
    engine_steps,
    for_backend,
    machine_cores,
    preloading,
    prepare_steps,
    run_env,
)
from magpie_hub.plugins import get_registry
from magpie_hub.registry import Tagger, View
from magpie_hub.running import ProgressCallback as Progress
from magpie_hub.running import run_pipeline
from magpie_hub.steps import mask_runs

log = logging.getLogger(__name__)
TEXT_COLUMNS = ("uuid", "instruction", "response", "response_base", "conversation")


@dataclass
class CuratePlan:
    folder: BuildFolder
    manifest: dict[str, Any]
    config: CurateConfig
    taggers: list[Tagger]
    ctx: TagContext
    stores: dict[str, Path]
    base_columns: list[str]
    filter: FilterPlan | None
    judge: dict[str, Any] | None
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    cores: int | None = None
    """The cores the judge engines share on this machine (None: they run on other nodes)."""
    steps: dict[str, Any] = field(default_factory=dict)
    """Where the last tagging run's steps ran (backend, replicas, threads): for the manifest."""


@dataclass
class CurateResult:
    build: Path
    manifest: dict[str, Any]
    computed: dict[str, int]
    """Tagger -> rows tagged by this run (0: all came from the store)."""
    seconds: float


def plan_curate(
    build: Path,
    config: CurateConfig,
    filter_config: FilterConfig | None,
    *,
    seed: int = 42,
    execution: ExecutionConfig | None = None,
) -> CuratePlan:
    """Resolve taggers, the judge and the filter; raises before any work."""
    folder = BuildFolder(build)
    manifest = folder.complete_manifest()
    registry = get_registry()
    taggers = [registry.tagger(name) for name in dict.fromkeys(config.taggers)]
    for tagger in taggers:
        if tagger.check:
            tagger.check(config)
    if not (manifest.get("counts") or {}).get("generated", 1):
        dropped = (manifest.get("counts") or {}).get("dropped_by_reason") or {}
        why = ", ".join(f"{n} {reason}" for reason, n in dropped.items()) or "none kept"
        raise BuildFolderError(
            build,
            f"the build has no rows to curate (every attempted row was dropped: {why})",
            hint='Generate rows that are kept: more max_new_tokens, or target = "kept".',
        )
    base_columns = _base_columns(folder.schema(), registry.taggers.values())
    if "instruction" not in base_columns:
        raise BuildFolderError(
            build, "the rows have no `instruction` column", hint="Curate works on instruction data."
        )
    judge_info, ctx = None, TagContext(config, seed, "response_base" in base_columns)
    if any(t.uses_judge for t in taggers):
        judge_info, ctx = _with_judge(config, ctx)
    stores = {t.name: folder.tag_store(t.name, _key(t, config, judge_info)) for t in taggers}
    columns: dict[str, str | None] = {c: None for c in base_columns}
    columns.update({c: t.name for t in taggers for c in t.columns})
    plan = plan_filter(filter_config, columns) if filter_config else None
    execution = execution or ExecutionConfig()
    cores: int | None = machine_cores()
    if execution.backend == "ray" and not connect_ray(execution, model_paths=[]):
        cores = None
    return CuratePlan(
        folder,
        manifest,
        config,
        taggers,
        ctx,
        stores,
        base_columns,
        plan,
        judge_info,
        execution,
        cores,
    )


def _base_columns(schema: Any, taggers: Any) -> list[str]:
    """The generated columns: the rows' columns minus any tag column of an earlier run."""
    tag_columns = {c for t in taggers for c in t.columns}
    return [c for c in schema.names if c not in tag_columns]


def _with_judge(config: CurateConfig, ctx: TagContext) -> tuple[dict[str, Any], TagContext]:
    from dataclasses import replace

    from magpie_hub.prompts.templates import resolve

    engine = get_registry().engine(config.judge.name)
    info = engine.inspect_model(config.judge)
    fmt = resolve(
        config.judge.template,
        info.chat_template,
        model=info.model_id,
        template_system=config.judge.template_system,
    )
    judge = {
        "id": info.model_id,
        "engine": engine.name,
        "file": info.path.name,
        "sha256": info.sha256,
    }
    make = lambda: engine.make_llm(config.judge, info)  # noqa: E731
    return judge, replace(ctx, judge_id=info.model_id, judge_format=fmt, make_judge_llm=make)


def _key(tagger: Tagger, config: CurateConfig, judge: dict[str, Any] | None) -> str:
    judge_part = judge["sha256"] if tagger.uses_judge and judge else None
    options = tagger.options(config) if tagger.options else None
    return cache_key(tagger.name, judge_part, options)


def run_curate(plan: CuratePlan, *, on_progress: Progress | None = None) -> CurateResult:
    """Tag what is missing, then write the tagged rows, the filtered view and the manifest."""
    with plan.folder.writer():
        return _run_curate(plan, on_progress)


def _run_curate(plan: CuratePlan, on_progress: Progress | None) -> CurateResult:
    started = time.monotonic()
    folder = plan.folder
    uuids = build_uuids(folder.shards())
    stores = {name: TagStore(path) for name, path in plan.stores.items()}
    lacks = {name: ~store.has(uuids) for name, store in stores.items()}
    computed = {name: int(mask.sum()) for name, mask in lacks.items() if mask.any()}
    if computed:
        todo = {name: mask_runs(mask) for name, mask in lacks.items()}
        _run_pipeline(plan, todo, len(uuids), on_progress)
        stores = {name: TagStore(path) for name, path in plan.stores.items()}  # new chunks
    del lacks
    join = TagJoin.locate(
        plan.taggers, plan.ctx, stores, uuids, build=folder.root, log=folder.cache
    )
    del uuids
    _write(plan, join, time.monotonic() - started, computed)
    return CurateResult(
        folder.root, plan.folder.read_manifest() or {}, computed, time.monotonic() - started
    )


def _run_pipeline(
    plan: CuratePlan, todo: dict[str, list[list[int]]], num_rows: int, on_progress: Progress | None
) -> None:
    from distilabel.pipeline.local import Pipeline

    for path in plan.stores.values():
        path.mkdir(parents=True, exist_ok=True)
    size = plan.config.batch_size
    shards = plan.folder.shards()
    with Pipeline(name="magpie-hub-curate", cache_dir=plan.folder.cache / "curate") as pipeline:
        previous: Any = TagRows(
            name="rows",
            shards=[str(p) for p in shards],
            columns=[c for c in TEXT_COLUMNS if c in plan.base_columns],
            num_rows=num_rows,
            todo=todo,
            batch_size=size,
        )
        for tagger in plan.taggers:
            step = tagger.make_step(plan.ctx)
            previous >> step
            previous = step
        sink = WriteTags(
            name="write_tags",
            stores={n: str(p) for n, p in plan.stores.items()},
            schemas={
                t.name: json.dumps(store_features(t.stored or t.columns).to_dict())
                for t in plan.taggers
            },
            input_batch_size=size,
        )
        previous >> sink
    total = sum(stop - start for runs in todo.values() for start, stop in runs)
    counts = [CommittedCount(p) for p in plan.stores.values()]
    before = sum(count() for count in counts)
    done = lambda: sum(count() for count in counts) - before  # noqa: E731
    chosen, warning = prepare_steps(pipeline, plan.execution, run_env(), cores=plan.cores)
    if warning:
        log.warning(warning)
    plan.steps = {"backend": plan.execution.backend, **chosen}
    with preloading((llm for _, llm in engine_steps(pipeline)), plan.execution):
        run_pipeline(for_backend(pipeline, plan.execution), done, total, on_progress)


def _write(plan: CuratePlan, join: TagJoin, seconds: float, computed: dict[str, int]) -> None:
    """Rewrite the shards with the tag columns, shard by shard (the filter sees each
    shard's rows as it is written), then the `filtered` view and the manifest."""
    from datasets import Features

    folder, manifest = plan.folder, dict(plan.manifest)
    base = Features.from_arrow_schema(folder.schema())
    check = FilterPass(plan.filter) if plan.filter is not None else None
    features: Any = None  # base + tag columns, known once the first shard's tags are

    def tagged(table: Any, first: int) -> Any:
        nonlocal features
        out = table.select(plan.base_columns)
        for columns in join.columns(first, first + table.num_rows):
            for name in columns.column_names:
                out = out.append_column(columns.schema.field(name), columns.column(name))
        if features is None:
            features = Features({**{c: base[c] for c in plan.base_columns}, **join.features()})
        out = out.cast(features.arrow_schema)
        if check is not None:
            check.add(out.select([c for c in check.columns if c in out.column_names]).to_pylist())
        return out

    folder.rewrite_shards(tagged)
    rows = len(folder.rows())
    views: dict[str, Any] = {
        k: v for k, v in (manifest.get("views") or {}).items() if k != "filtered"
    }
    if check is not None and plan.filter is not None:
        kept, funnel = check.kept()
        picked = View(folder.picked(kept), features, {})
        views.update(folder.write_views({"filtered": picked}))
        manifest["filter"] = {
            "preset": plan.filter.preset,
            "rules": [r.model_dump() for r in plan.filter.rules],
            "top_n": plan.filter.top_n,
            "shuffle_seed": plan.filter.shuffle_seed,
            "funnel": funnel,
        }
    else:
        manifest.pop("filter", None)
    manifest["curate"] = {
        "taggers": join.report(rows),
        "judge": plan.judge,
        "config": redacted_dump(plan.config),
        "rows": rows,
        "computed_this_run": computed,
        "seconds_this_run": round(seconds, 3),
        "execution": plan.steps or {"backend": plan.execution.backend},
    }
    manifest["views"] = views
    manifest["data_files"] = folder.data_files()
    folder.write_manifest(manifest)
