"""Run a recipe into a build folder: resume-aware, with progress and a manifest."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from magpie_hub import __version__
from magpie_hub.build import BuildFolder
from magpie_hub.config import InstructionSampling, RunConfig, redacted_dump
from magpie_hub.engines.base import ModelInfo, RawTextLLM
from magpie_hub.engines.servers import ENGINE_EVENTS_ENV, summarize_events
from magpie_hub.errors import ConfigError
from magpie_hub.execution import (
    connect_ray,
    for_backend,
    machine_cores,
    preloading,
    prepare_steps,
    run_env,
)
from magpie_hub.plugins import get_registry
from magpie_hub.prompts.templates import PromptFormat, resolve
from magpie_hub.registry import BuildContext, Engine, Recipe
from magpie_hub.row_types import features
from magpie_hub.running import ProgressCallback, run_pipeline


@dataclass
class GenerateResult:
    out: Path
    manifest: dict[str, Any]
    log_dir: Path

    @property
    def complete(self) -> bool:
        return bool(self.manifest["status"] == "complete")


@dataclass
class BuildPlan:
    """What a run will do, checked before anything is generated."""

    config: RunConfig
    recipe: Recipe
    engine: Engine
    model: ModelInfo
    folder: BuildFolder
    todo: list[int]
    extras: dict[str, tuple[Engine, ModelInfo]]
    resumed: bool
    previous: dict[str, Any]
    format: PromptFormat
    """Resolved once for the build; its chat template renders on `render_date`."""
    render_date: str | None
    """The day the prompts render (None: the template does not use the date)."""
    cores: int | None = None
    """The cores the engine steps share on this machine (None: they run on other nodes)."""
    steps: dict[str, Any] = field(default_factory=dict)
    """How the last run placed the engine steps: backend, replicas and threads per step."""


def plan_build(config: RunConfig, out: Path, *, force: bool = False) -> BuildPlan:
    """Resolve recipe, engine and model, and prepare the folder; raises before any work."""
    registry = get_registry()
    recipe = registry.recipe(config.recipe)
    engine = registry.engine(config.engine.name)
    model = engine.inspect_model(config.engine)
    fmt = _prompt_format(config, model, None)  # no usable chat template: fails here
    if recipe.check:
        recipe.check(config, fmt)
    _check_first_token_bans(config, engine.make_llm(config.engine, model))
    extras = {}
    for name, cfg in config.extra_engines().items():
        extra = registry.engine(cfg.name)
        extras[name] = (extra, extra.inspect_model(cfg))
    cores = _connect(config, [model, *(info for _, info in extras.values())])
    folder = BuildFolder(out)
    resumed = folder.prepare(_identity(config, model, extras), force=force)
    previous = folder.read_manifest() or {}
    day = _render_date(config, model, previous if resumed else {})
    return BuildPlan(
        config=config,
        recipe=recipe,
        engine=engine,
        model=model,
        folder=folder,
        todo=folder.pending(config.num_rows),
        extras=extras,
        resumed=resumed,
        previous=previous,
        format=fmt if day is None else _prompt_format(config, model, day),
        render_date=day,
        cores=cores,
    )


def _connect(config: RunConfig, models: list[ModelInfo]) -> int | None:
    """On Ray: join the cluster and check its nodes (before the folder is touched)."""
    if config.execution.backend == "local":
        return machine_cores()
    files = [str(m.path) for m in models if m.format != "remote"]
    return machine_cores() if connect_ray(config.execution, model_paths=files) else None


def _plugin_versions(*names: str) -> dict[str, str | None]:
    """`plugin:<name>` -> version for the plugins behind the recipe and engine."""
    from magpie_hub.plugins import get_plugins

    infos = get_plugins().infos
    return {f"plugin:{n}": infos[n].version for n in sorted(set(names)) if n in infos}


def _check_first_token_bans(config: RunConfig, llm: RawTextLLM) -> None:
    """Fail before any work when a section bans first tokens and the engine cannot."""
    for name, section in config:
        bans = isinstance(section, InstructionSampling) and section.ban_first_tokens
        if bans and not llm.supports_first_token_ban:
            field = f"{name}.ban_first_tokens"
            raise ConfigError(
                f"{field}: engine {config.engine.name!r} cannot ban first tokens",
                field=field,
                hint=f"Use engine llamacpp or transformers, or remove `{field}`.",
            )


def generate(
    config: RunConfig,
    out: Path,
    *,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
) -> GenerateResult:
    """Generate `config.num_rows` rows into `out`, continuing an earlier run there if any."""
    with BuildFolder(out).writer():
        return run_build(plan_build(config, out, force=force), on_progress=on_progress)


def run_build(
    plan: BuildPlan,
    *,
    on_progress: ProgressCallback | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> GenerateResult:
    """Run the planned pipeline (topped up with new rows while target `kept` is short),
    then consolidate the shards and write the manifest."""
    config, folder, model, engine = plan.config, plan.folder, plan.model, plan.engine
    started = time.monotonic()
    attempts = config.num_rows
    folder.engine_events.unlink(missing_ok=True)  # the summary tells this run's events
    while True:
        if todo := folder.pending(attempts):
            _run_rows(plan, todo, attempts, on_progress, on_warning)
        kept = sum(1 for i in folder.chunk_state().written if i < attempts)
        if folder.pending(attempts) or kept >= config.num_rows:
            break  # interrupted, or enough rows
        if attempts >= config.attempt_limit():
            break
        attempts = _more_attempts(attempts, kept, config)
    elapsed = time.monotonic() - started

    state = folder.chunk_state()
    keep = config.num_rows if config.target == "kept" else None
    folder.consolidate(plan.recipe.features, attempts, keep=keep)
    written = min(sum(1 for i in state.written if i < attempts), keep or attempts)
    pending = len(folder.pending(attempts))
    views = _views(plan, pending)
    if on_progress:
        on_progress(attempts - pending, attempts)
    total_seconds = plan.previous.get("timings", {}).get("total_seconds", 0.0) + elapsed
    manifest = {
        **_identity(config, model, plan.extras),
        "status": "complete" if pending == 0 else "incomplete",
        "created": plan.previous.get("created") or _now(),
        "updated": _now(),
        "config": redacted_dump(config),
        "versions": {
            "magpie-hub": __version__,
            "distilabel": metadata.version("distilabel"),
            f"engine:{engine.name}": engine.library_version(),
            "python": platform.python_version(),
            **_plugin_versions(plan.recipe.plugin, engine.plugin),
        },
        "model": {
            "id": model.model_id,
            "engine": engine.name,
            "file": model.path.name,
            "format": model.format,
            "sha256": model.sha256,
        },
        **_extra_models(plan),
        "pre_query_template": plan.format.pre_query,  # rows record theirs, system included
        "render_date": plan.render_date,
        "seed": config.seed,
        "counts": {
            "requested": config.num_rows,
            "target": config.target,
            "attempted": attempts,
            "extra_attempts": attempts - config.num_rows,
            "generated": written,
            "dropped": sum(1 for i in state.dropped if i < attempts),
            "dropped_by_reason": state.dropped_by_reason(),
            "pending": pending,
        },
        "timings": {
            "this_run_seconds": round(elapsed, 3),
            "total_seconds": round(total_seconds, 3),
            "rows_per_second": round(written / total_seconds, 4) if total_seconds else None,
        },
        "resumed": plan.resumed,
        "failed_rows": len(state.failed),
        "engine_events": summarize_events(folder.engine_events),
        "execution": plan.steps or plan.previous.get("execution", {}),
        "features": features(plan.recipe.features).to_dict(),
        "views": folder.write_views(views),
        "data_files": folder.data_files(),
    }
    folder.write_manifest(manifest)
    return GenerateResult(out=folder.root, manifest=manifest, log_dir=folder.cache)


def _run_rows(
    plan: BuildPlan,
    todo: list[int],
    attempts: int,
    on_progress: ProgressCallback | None,
    on_warning: Callable[[str], None] | None,
) -> None:
    """One pipeline run over the row indices `todo`; the engines' models start loading
    first, and load while the pipeline is built and placed."""
    config, folder, model = plan.config, plan.folder, plan.model
    llms = [plan.engine.make_llm(config.engine, model)]
    llms += [_make_extra_llm(plan, name) for name in plan.extras]
    with preloading(llms, config.execution):
        pipeline = build_pipeline(plan, todo)  # imports distilabel's pipeline module
        env = {**run_env(), ENGINE_EVENTS_ENV: str(folder.engine_events)}
        chosen, warning = prepare_steps(pipeline, config.execution, env, cores=plan.cores)
        if warning and on_warning:
            on_warning(warning)
        plan.steps = {"backend": config.execution.backend, **chosen}
        identity = _identity(config, model, plan.extras)
        previous = folder.read_manifest() or plan.previous
        folder.write_manifest(
            {**previous, **identity, "render_date": plan.render_date, "status": "running"}
        )
        settled = lambda: len(folder.chunk_state().settled)  # noqa: E731
        run_pipeline(for_backend(pipeline, config.execution), settled, attempts, on_progress)


def build_pipeline(plan: BuildPlan, todo: list[int]) -> Any:
    """The recipe's distilabel pipeline for the row indices `todo`."""
    config, model, engine = plan.config, plan.model, plan.engine
    ctx = BuildContext(
        config=config,
        model=model,
        format=plan.format,
        make_llm=lambda: engine.make_llm(config.engine, model),
        row_indices=todo,
        chunk_dir=plan.folder.chunks,
        cache_dir=plan.folder.cache,
        extra_models={name: info for name, (_, info) in plan.extras.items()},
        make_extra_llm=partial(_make_extra_llm, plan),
    )
    return plan.recipe.build_pipeline(ctx)


def _views(plan: BuildPlan, pending: int) -> dict[str, Any]:
    """The recipe's views and the chosen training views of a finished build (none while
    rows are pending); a training view no longer chosen is removed."""
    import shutil

    from magpie_hub.generate.training_views import training_views, unselected

    config, folder = plan.config, plan.folder
    for name in unselected(config.views):
        shutil.rmtree(folder.view_dir(name), ignore_errors=True)
    if pending:
        return {}
    rows = folder.rows()
    views = plan.recipe.views(rows, config) if plan.recipe.views else {}
    return {**views, **training_views(rows, config.views)}


def _more_attempts(attempts: int, kept: int, config: RunConfig) -> int:
    """How many row indices to attempt next for target `kept`: enough for the missing rows
    at the keep rate seen so far, within `attempt_limit()`."""
    missing = config.num_rows - kept
    rate = kept / attempts if attempts else 0.0
    extra = math.ceil(missing / rate) if rate > 0.1 else 2 * missing
    return min(config.attempt_limit(), attempts + max(extra, missing))


def _identity(
    config: RunConfig, model: ModelInfo, extras: dict[str, tuple[Engine, ModelInfo]]
) -> dict[str, Any]:
    """What makes two runs the same build: a folder holds rows of one identity only."""
    identity: dict[str, Any] = {
        "recipe": config.recipe,
        "fingerprint": config.fingerprint(),
        "model_sha256": model.sha256,
    }
    if extras:
        identity["extra_model_sha256"] = {n: info.sha256 for n, (_, info) in extras.items()}
    return identity


def _make_extra_llm(plan: BuildPlan, name: str) -> RawTextLLM:
    engine, info = plan.extras[name]
    return engine.make_llm(plan.config.extra_engines()[name], info)


def _extra_models(plan: BuildPlan) -> dict[str, Any]:
    """The manifest's record of the extra engines' models (nothing when there are none)."""
    if not plan.extras:
        return {}
    return {
        "extra_models": {
            name: {"id": i.model_id, "engine": e.name, "file": i.path.name, "sha256": i.sha256}
            for name, (e, i) in plan.extras.items()
        }
    }


def _render_date(config: RunConfig, model: ModelInfo, previous: dict[str, Any]) -> str | None:
    """The day the chat template renders: the config's, else the one this build started
    on (a resumed build keeps it), else today; None when the template does not use it."""
    template = model.chat_template
    if template is None or not template.uses_date:
        return None
    return config.engine.render_date or previous.get("render_date") or date.today().isoformat()


def _prompt_format(config: RunConfig, model: ModelInfo, day: str | None) -> PromptFormat:
    template = model.chat_template.on(day) if model.chat_template and day else model.chat_template
    return resolve(
        config.engine.template,
        template,
        model=model.model_id,
        template_system=config.engine.template_system,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
