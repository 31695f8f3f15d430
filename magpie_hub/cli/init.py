"""`magpie-hub init`: write a commented starter config for a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magpie_hub.cli.output import err
from magpie_hub.config import DEFAULT_CONFIG_NAME
from magpie_hub.errors import ConfigError
from magpie_hub.plugins import get_registry


def init(
    path: Annotated[Path, typer.Argument(help="Where to write the config.")] = Path(
        DEFAULT_CONFIG_NAME
    ),
    recipe: Annotated[str, typer.Option("--recipe", "-r", help="Recipe to configure.")] = "magpie",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    curate: Annotated[
        bool, typer.Option("--curate", help="Add [curate] and [filter] sections.")
    ] = False,
) -> None:
    """Write a commented starter config that runs as-is on the embedded model."""
    text = get_registry().recipe(recipe).starter_config
    if curate:
        from magpie_hub.curate.starter import STARTER

        text = text.rstrip("\n") + "\n" + STARTER
    if path.exists() and not force:
        raise ConfigError("already exists", path=path, hint="Pass --force to overwrite it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    err.print(f"Wrote {path} (recipe {recipe!r}). Next: magpie-hub generate {path} --out build")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
