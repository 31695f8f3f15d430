"""Options several commands share, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config field: dotted.key=value (repeatable)."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
