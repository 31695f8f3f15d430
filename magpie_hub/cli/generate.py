"""`magpie-hub generate`: run a recipe into a build folder, with progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from magpie_hub.build import BuildFolder
from magpie_hub.cli.options import AsJson, Overrides, Quiet, Ray, ray_overrides
from magpie_hub.cli.output import err, out, print_json
from magpie_hub.config import DEFAULT_CONFIG_NAME, load_config
from magpie_hub.generate.run import BuildPlan, GenerateResult, plan_build, run_build
from magpie_hub.plugins import get_registry


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        speed = (
            task.finished_speed
            or task.speed
            or (task.completed / elapsed if elapsed and task.completed else None)
        )
        return Text(f"{speed:.2f} rows/s" if speed else "- rows/s", style="progress.data.speed")


def generate_command(
    config: Annotated[Path, typer.Argument(help="The magpie-hub.toml to run.")] = Path(
        DEFAULT_CONFIG_NAME
    ),
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Build folder to write.")] = Path(
        "build"
    ),
    overrides: Overrides = None,
    num_rows: Annotated[
        int | None, typer.Option("--num-rows", "-n", help="Override num_rows.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="attempts: -n rows are attempted (drops are not replaced); kept: new rows "
            "are attempted until -n are kept (at most max_attempts).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Discard a build made from a different config.")
    ] = False,
    ray: Ray = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
) -> None:
    """Generate a dataset into a build folder; re-run to continue an interrupted build."""
    sets = [*(overrides or []), *([f"target={target}"] if target else []), *ray_overrides(ray)]
    cfg = load_config(config, get_registry(), overrides=sets, num_rows=num_rows)
    with BuildFolder(out_dir).writer():
        result = _run(plan_build(cfg, out_dir, force=force), quiet or as_json)
    summary = summarize(result)
    if as_json:
        print_json(summary)
    elif not quiet:
        out.print(summary_table(summary))
    if not result.complete:
        failed = result.manifest["failed_rows"]
        why = f"{failed} row(s) failed in the engine" if failed else "the run stopped early"
        err.print(
            f"[yellow]Build incomplete:[/] {summary['pending']} row(s) pending; {why} "
            f"(interrupted, or a step failed: see the log under {result.log_dir}). "
            "Finished rows are kept; re-run the same command to continue."
        )
        raise typer.Exit(code=3)


def _run(plan: BuildPlan, hide: bool) -> GenerateResult:
    """Run the plan, with a progress bar unless `hide`."""
    if not hide:
        with Progress(
            TextColumn("[bold]generating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            RowsPerSecond(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
        ) as bar:
            task = bar.add_task("rows", total=plan.config.num_rows)
            result = run_build(
                plan,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                on_warning=_warn,
            )
    else:
        result = run_build(plan, on_warning=_warn)
    return result


def _warn(message: str) -> None:
    err.print(f"[yellow]Warning:[/] {message}", highlight=False)


def summarize(result: GenerateResult) -> dict[str, Any]:
    m = result.manifest
    return {
        "out": str(result.out),
        "status": m["status"],
        "recipe": m["recipe"],
        "model": m["model"]["id"],
        "engine": m["model"]["engine"],
        **{k: m["counts"][k] for k in ("requested", "generated", "dropped", "pending")},
        "attempted": m["counts"].get("attempted", m["counts"]["requested"]),
        "dropped_by_reason": m["counts"]["dropped_by_reason"],
        "seconds": m["timings"]["total_seconds"],
        "rows_per_second": m["timings"]["rows_per_second"],
        "resumed": m["resumed"],
        "data_files": m["data_files"],
        "engine_events": m.get("engine_events") or {},
    }


def summary_table(s: dict[str, Any]) -> Table:
    table = Table(title=f"magpie-hub generate: {s['status']}", show_header=False)
    dropped = ", ".join(f"{k}: {v}" for k, v in s["dropped_by_reason"].items())
    rows = [
        ("build folder", s["out"]),
        ("recipe / model", f"{s['recipe']} / {s['model']} ({s['engine']})"),
        ("requested", str(s["requested"])),
        *([("attempted", str(s["attempted"]))] if s["attempted"] != s["requested"] else []),
        ("generated", str(s["generated"])),
        ("dropped", f"{s['dropped']}" + (f" ({dropped})" if dropped else "")),
        ("pending", str(s["pending"])),
        ("time", f"{s['seconds']:.1f} s ({s['rows_per_second'] or 0:.2f} rows/s)"),
        ("resumed", "yes" if s["resumed"] else "no"),
        *_server_rows(s["engine_events"]),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _server_rows(events: dict[str, Any]) -> list[tuple[str, str]]:
    """What happened to the engine's servers, when anything did."""
    if not events:
        return []
    failures = ", ".join(f"{url}: {n}" for url, n in events["server_failures"].items())
    return [
        ("server failures", failures or "none"),
        ("requests moved", f"{events['requests_moved']} (retried on another server)"),
    ]


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
