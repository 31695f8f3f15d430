"""`magpie-hub curate`: tag a build's rows and write its `filtered` view."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from magpie_hub.cli.options import AsJson, Overrides, Quiet, Ray, ray_overrides
from magpie_hub.cli.output import err, out, print_json
from magpie_hub.config import DEFAULT_CONFIG_NAME
from magpie_hub.curate.config import load_curation
from magpie_hub.curate.run import CurateResult, plan_curate, run_curate


def curate_command(
    config: Annotated[
        Path, typer.Argument(help="A config with a [curate] (and optional [filter]) section.")
    ] = Path(DEFAULT_CONFIG_NAME),
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="The build folder to curate.")
    ] = Path("build"),
    overrides: Overrides = None,
    ray: Ray = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
) -> None:
    """Tag the rows of a finished build (judge tags, language, reward, safety, near-duplicates)
    and apply [filter] as the `filtered` view; re-run to continue an interrupted run."""
    cfg = load_curation(config, overrides=[*(overrides or []), *ray_overrides(ray)])
    plan = plan_curate(out_dir, cfg.curate, cfg.filter, seed=cfg.seed, execution=cfg.execution)
    if quiet or as_json:
        result = run_curate(plan)
    else:
        with Progress(
            TextColumn("[bold]tagging"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tags"),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task = bar.add_task("tags", total=None)
            result = run_curate(
                plan, on_progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
    summary = summarize(result)
    if as_json:
        print_json(summary)
    elif not quiet:
        out.print(summary_table(summary))


def summarize(result: CurateResult) -> dict[str, Any]:
    m = result.manifest
    funnel = (m.get("filter") or {}).get("funnel")
    return {
        "build": str(result.build),
        "rows": m["curate"]["rows"],
        "taggers": m["curate"]["taggers"],
        "judge": (m["curate"].get("judge") or {}).get("id"),
        "computed_this_run": result.computed,
        "filtered_rows": funnel[-1]["rows_after"] if funnel else None,
        "funnel": funnel,
        "seconds": round(result.seconds, 2),
    }


def summary_table(s: dict[str, Any]) -> Table:
    table = Table(title=f"magpie-hub curate: {s['build']}", show_header=False)
    table.add_row("rows", str(s["rows"]))
    if s["judge"]:
        table.add_row("judge", s["judge"])
    for name, info in s["taggers"].items():
        errors = ", ".join(f"{k}: {v}" for k, v in info["errors_by_reason"].items())
        fresh = s["computed_this_run"].get(name, 0)
        detail = f"{info['tagged']} tagged, {fresh} computed now" + (
            f"; errors {errors}" if errors else ""
        )
        table.add_row(f"tagger {name}", detail)
    for step in s["funnel"] or []:
        table.add_row("filter", f"{step['step']}: {step['rows_after']} rows (-{step['removed']})")
    table.add_row("time", f"{s['seconds']:.1f} s")
    return table


def register(app: typer.Typer) -> None:
    app.command("curate")(curate_command)
