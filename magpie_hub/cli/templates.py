"""`magpie-hub templates`: the presets, and what a model's chat template derives to."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from magpie_hub.cli.output import out, print_json
from magpie_hub.prompts.templates import PRESETS, describe

app = typer.Typer(help="Pre-query templates: presets and derivation.", no_args_is_help=True)


@app.command("list")
def list_presets(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the template presets with their pre-query templates and stop strings."""
    if as_json:
        print_json([describe(name) for name in PRESETS])
        return
    table = Table("preset", "pre-query template", "stop strings")
    for p in PRESETS.values():
        table.add_row(p.name, Text(repr(p.pre_query)), Text(", ".join(p.stop)))
    out.print(table)


@app.command("show")
def show(
    source: Annotated[
        str,
        typer.Argument(help="A preset, a .gguf file, a tokenizer folder or tokenizer_config.json."),
    ],
    template_system: Annotated[
        str,
        typer.Option(
            "--template-system", help="default, or none to leave out an injected system block."
        ),
    ] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the pre-query template, turn switches and stop strings for SOURCE."""
    info = describe(source, template_system=template_system)
    if as_json:
        print_json(info)
        return
    table = Table(show_header=False)
    for key, value in info.items():
        table.add_row(key, Text(repr(value) if isinstance(value, str) else str(value)))
    out.print(table)


def register(cli: typer.Typer) -> None:
    cli.add_typer(app, name="templates")
