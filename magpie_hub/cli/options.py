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
Ray = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Run the steps on Ray: `--ray` starts a local Ray runtime, `--ray ADDRESS` "
        "joins a cluster (host:port, ray://host:port or auto).",
    ),
]
LOCAL_RAY = "local"
"""What a bare `--ray` stands for (see `bare_ray_flag`)."""


def ray_overrides(ray: str | None) -> list[str]:
    """`--ray [ADDRESS]` as config overrides of [execution]."""
    if ray is None:
        return []
    sets = ["execution.backend=ray"]
    return sets if ray == LOCAL_RAY else [*sets, f"execution.address={ray}"]


def bare_ray_flag(argv: list[str]) -> list[str]:
    """Let `--ray` go without a value: one follows only when it looks like an address."""
    out = []
    for n, arg in enumerate(argv):
        out.append(arg)
        if arg == "--ray":
            following = argv[n + 1] if n + 1 < len(argv) else ""
            if not (":" in following or following in ("auto", LOCAL_RAY)):
                out.append(LOCAL_RAY)
    return out
