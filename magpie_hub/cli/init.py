"""`magpie-hub init`: write a commented starter config for a recipe."""

from __future__ import annotations

from pathlib import Path

import typer

from magpie_hub.cli.output import err
from magpie_hub.config import DEFAULT_CONFIG_NAME
from magpie_hub.errors import ConfigError
from magpie_hub.plugins import get_registry


def init(
    path: Path = typer.Argument(Path(DEFAULT_CONFIG_NAME), help="Where to write the config."),
    recipe: str = typer.Option("magpie", "--recipe", "-r", help="Recipe to configure."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter config that runs as-is on the embedded model."""
    text = get_registry().recipe(recipe).starter_config
    if path.exists() and not force:
        raise ConfigError("already exists", path=path, hint="Pass --force to overwrite it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    err.print(f"Wrote {path} (recipe {recipe!r}). Next: magpie-hub generate {path} --out build")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
