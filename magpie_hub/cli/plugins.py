"""`magpie-hub plugins`: what is loaded, from where, registering what."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from magpie_hub.cli.output import out, print_json
from magpie_hub.plugins import get_plugins
from magpie_hub.registry import KINDS


def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of objects.")] = False,
) -> None:
    """List loaded plugins: name, version, hooks, and what they register."""
    infos = list(get_plugins().infos.values())
    if as_json:
        print_json([i.as_dict() for i in infos])
        return
    table = Table("name", "version", "provides", "status")
    for i in infos:
        status = f"[red]failed: {i.error}[/]" if i.error else ("built-in" if i.builtin else "ok")
        provides = "\n".join(
            f"{k.label} {', '.join(i.provides[k.plural])}" for k in KINDS if i.provides[k.plural]
        )
        table.add_row(i.name, i.version or "?", provides or ", ".join(i.hooks), status)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
