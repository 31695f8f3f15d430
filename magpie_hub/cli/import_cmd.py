"""`magpie-hub import`: make a build folder from data made elsewhere (a file or a Hub dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from magpie_hub.cli.output import out, print_json
from magpie_hub.generate.importer import ImportResult, import_build


def import_command(
    source: Annotated[
        str,
        typer.Argument(
            help="A .jsonl/.json (JSON lines), .parquet or .csv file, or a Hub dataset id "
            "NAMESPACE/NAME."
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Build folder to write.")],
    config: Annotated[
        str | None, typer.Option("--config", help="The Hub dataset's config (subset).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="The Hub dataset's split.")] = "train",
    revision: Annotated[
        str | None, typer.Option("--revision", help="Branch, tag or commit of the Hub dataset.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace whatever --out holds.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout.")
    ] = False,
) -> None:
    """Import instruction/response or conversation data as a build folder, to card, push,
    review and curate like a generated build."""
    result = import_build(
        source, out_dir, config=config, split=split, revision=revision, force=force
    )
    summary = summarize(result)
    if as_json:
        print_json(summary)
    else:
        out.print(summary_table(summary))


def summarize(result: ImportResult) -> dict[str, Any]:
    m = result.manifest
    counts = m["counts"]
    return {
        "out": str(result.out),
        "source": result.source,
        "fingerprint": m["fingerprint"],
        "rows_read": counts["requested"],
        "written": counts["generated"],
        "dropped": counts["dropped"],
        "dropped_by_reason": counts["dropped_by_reason"],
        "model": m["model"]["id"],
        "previous": result.previous,
        "data_files": m["data_files"],
    }


def summary_table(s: dict[str, Any]) -> Table:
    table = Table(title="magpie-hub import", show_header=False)
    dropped = ", ".join(f"{k}: {v}" for k, v in s["dropped_by_reason"].items())
    rows = [
        ("source", s["source"]),
        ("rows read", str(s["rows_read"])),
        ("written", str(s["written"])),
        ("dropped", f"{s['dropped']}" + (f" ({dropped})" if dropped else "")),
        ("model", s["model"]),
        ("build folder", s["out"]),
    ]
    if s["previous"] != "none":
        rows.append(("previous build", s["previous"]))
    for key, value in rows:
        table.add_row(key, value)
    return table


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
