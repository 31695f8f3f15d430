"""`magpie-hub publish`: generate -> card -> push -> review push, skipping what is up to date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from magpie_hub.cli.options import Ray, ray_overrides
from magpie_hub.cli.output import err, out, print_json
from magpie_hub.config import load_config
from magpie_hub.plugins import get_registry
from magpie_hub.release.publish import publish


def publish_command(
    config: Annotated[Path, typer.Argument(help="The magpie-hub.toml to publish.")],
    repo: Annotated[str, typer.Option("--repo", help="Dataset repository, NAMESPACE/NAME.")],
    tag: Annotated[str, typer.Option("--tag", help="Release tag, e.g. v1.0.0.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Build folder.")] = Path("build"),
    review: Annotated[
        bool, typer.Option("--review", help="Also push the rows to Argilla for review.")
    ] = False,
    review_dataset: Annotated[
        str | None, typer.Option("--review-dataset", help="Argilla dataset (default: NAME).")
    ] = None,
    local: Annotated[
        Path | None, typer.Option("--local", help="Write the release tree here; no Hub.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config field (repeatable).")
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option("--summary", help="Append a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stages as JSON.")] = False,
    ray: Ray = None,
) -> None:
    """Publish CONFIG as release TAG of REPO, running only the stages that are out of date."""
    cfg = load_config(config, get_registry(), overrides=[*(overrides or []), *ray_overrides(ray)])
    dataset = (review_dataset or repo.split("/")[-1]) if review else None
    with err.status("publishing ...") as status:
        result = publish(
            cfg,
            out_dir,
            repo,
            tag,
            review_dataset=dataset,
            local=local,
            dry_run=dry_run,
            on_stage=lambda name: status.update(f"publishing: {name} ..."),
        )
    if summary is not None:
        with summary.open("a", encoding="utf-8") as fh:
            fh.write(result.summary_markdown())
    if as_json:
        print_json(result.as_dict())
    else:
        title = f"magpie-hub publish{' (dry run)' if dry_run else ''}: {repo} {tag}"
        table = Table("stage", "ran", "detail", "link", title=title)
        for s in result.stages:
            table.add_row(s.name, "yes" if s.ran else "skipped", s.detail, s.link or "")
        out.print(table)
    if any(s.detail == "incomplete" for s in result.stages):
        raise typer.Exit(3)


def register(cli: typer.Typer) -> None:
    cli.command("publish")(publish_command)
