"""`magpie-hub push` and `magpie-hub card`: publish a build to the Hub, or render its card."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from magpie_hub.cli.output import err, out, print_json
from magpie_hub.release.hub import push, push_local
from magpie_hub.release.tree import stage_release

BuildArg = Annotated[Path, typer.Argument(help="A build folder made by `magpie-hub generate`.")]


def push_command(
    build: BuildArg,
    repo: Annotated[str, typer.Option("--repo", help="Dataset repository, NAMESPACE/NAME.")],
    tag: Annotated[str | None, typer.Option("--tag", help="Tag the release, e.g. v1.0.0.")] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    revision: Annotated[
        str, typer.Option("--revision", help="Branch to commit to (created if missing).")
    ] = "main",
    local: Annotated[
        Path | None,
        typer.Option("--local", help="Write the release tree to this folder instead of pushing."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Publish BUILD as one release: one Hub commit with data, card, plots, config, manifest."""
    if local is not None:
        result = push_local(build, local, repo_id=repo, tag=tag)
    else:
        with err.status(f"Pushing {build} to {repo} ..."):
            result = push(build, repo, tag=tag, private=private, revision=revision)
    if as_json:
        print_json(asdict(result))
        return
    table = Table(title=f"magpie-hub push: {result.repo_id}", show_header=False)
    table.add_row("where", result.url)
    if local is None:
        table.add_row("revision", result.revision)
        table.add_row("commit", result.commit or "")
        table.add_row("new commit", "yes" if result.committed else "no (already published)")
    table.add_row("tag", result.tag or "(none)")
    table.add_row("files", str(len(result.files)))
    out.print(table)


def card_command(
    build: BuildArg,
    repo: Annotated[
        str, typer.Option("--repo", help="Repository id the card names.")
    ] = "NAMESPACE/NAME",
    tag: Annotated[str | None, typer.Option("--tag", help="Release tag the card names.")] = None,
) -> None:
    """Render BUILD's dataset card (README.md) to stdout, computed as a push would."""
    with tempfile.TemporaryDirectory() as tmp:  # not the release folder a publish relies on
        tree = stage_release(build, Path(tmp) / "release", repo_id=repo, tag=tag)
        print(tree.card, end="")


def register(cli: typer.Typer) -> None:
    cli.command("push")(push_command)
    cli.command("card")(card_command)
