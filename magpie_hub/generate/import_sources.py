"""Where imported rows come from: local files (JSON lines, Parquet, CSV) or a Hub dataset.

`resolve` turns what the user typed into a `Source`: its manifest record, fingerprint and
a reader of its rows. Nothing is read from the build folder here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magpie_hub.errors import HubNetworkError, ImportSourceError
from magpie_hub.release.hub import REPO_ID

CONVERSATION_COLUMNS = ("conversation", "messages", "conversations")
"""Checked in this order; each holds {role, content} (OpenAI) or {from, value} (ShareGPT)."""
FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
Rows = Callable[[list[str]], Iterator[dict[str, Any]]]
"""Reads a source's rows, each holding just the columns asked for."""
SOURCE_HINT = (
    "Give a .jsonl/.json (JSON lines), .parquet or .csv file, or a Hugging Face Hub "
    "dataset id NAMESPACE/NAME."
)


@dataclass
class Source:
    """A resolved source: what it is, its fingerprint, and how to read its rows."""

    name: str
    record: dict[str, Any]
    """The manifest's `source`, less what reading adds."""
    fingerprint: str
    load: Callable[[], tuple[list[str], Rows]]
    """() -> (its columns, how to read its rows)."""


def resolve(source: str, *, config: str | None, split: str, revision: str | None) -> Source:
    path = Path(source).expanduser()
    if path.exists() or path.suffix.lower() in FORMATS or not REPO_ID.fullmatch(source):
        if config is not None or revision is not None or split != "train":
            raise ImportSourceError(
                source,
                "--config, --split and --revision apply to Hub datasets, not to a file",
                hint="Leave them out for a local file.",
            )
        return _file_source(source, path)
    return _hub_source(source, config=config, split=split, revision=revision)


def _file_source(source: str, path: Path) -> Source:
    if not path.exists():
        raise ImportSourceError(source, "no such file", hint=SOURCE_HINT)
    if path.is_dir():
        raise ImportSourceError(source, "is a folder, not a file", hint=SOURCE_HINT)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImportSourceError(
            source,
            f"unsupported file type {path.suffix or '(no extension)'!r}",
            hint=f"{SOURCE_HINT} Convert the file to one of these first.",
        )
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    sha256 = digest.hexdigest()
    record = {
        "kind": "file",
        "path": path.name,  # not the local path: the manifest is published with the data
        "format": path.suffix.lower().lstrip("."),
        "sha256": sha256,
        **dict.fromkeys(("config", "split", "revision")),
    }
    return Source(source, record, sha256[:16], lambda: _read_file(source, path, fmt))


def _read_file(source: str, path: Path, fmt: str) -> tuple[list[str], Rows]:
    import pyarrow as pa

    what = {"json": "JSON lines", "parquet": "Parquet", "csv": "CSV"}[fmt]
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            return names, lambda cols: _parquet_rows(source, path, cols)
        if fmt == "csv":
            from pyarrow import csv

            text = {c: pa.string() for c in ("instruction", "response", "system_prompt")}
            text |= {c: pa.string() for c in ("uuid", "model", *CONVERSATION_COLUMNS)}
            table = csv.read_csv(
                path,
                parse_options=csv.ParseOptions(newlines_in_values=True),
                convert_options=csv.ConvertOptions(column_types=text),
            )
            return table.column_names, lambda cols: _table_rows(table.select(cols))
        from pyarrow import json as pa_json

        try:
            table = pa_json.read_json(path)
            return table.column_names, lambda cols: _table_rows(table.select(cols))
        except pa.ArrowInvalid:  # a JSON array, or types that vary from row to row
            return _read_json_python(source, path)
    except (pa.ArrowException, OSError) as exc:
        raise ImportSourceError(
            source, f"cannot read it as {what}: {exc}", hint=f"Check that the file is {what}."
        ) from exc


def _read_json_python(source: str, path: Path) -> tuple[list[str], Rows]:
    hint = "Each line must be one JSON object (JSON lines), or the file one JSON array of objects."
    records: Any = []
    where = ""
    try:
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            records = json.loads(text)
        else:
            for number, line in enumerate(text.splitlines(), 1):
                where = f"line {number}: "
                if line.strip():
                    records.append(json.loads(line))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportSourceError(source, f"is not valid JSON ({where}{exc})", hint=hint) from exc
    if not all(isinstance(r, dict) for r in records):
        raise ImportSourceError(source, "holds JSON values that are not objects", hint=hint)
    names = list(dict.fromkeys(k for r in records for k in r))
    return names, lambda cols: ({c: r.get(c) for c in cols} for r in records)


def _parquet_rows(source: str, path: Path, columns: list[str]) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise ImportSourceError(
            source, f"cannot read it as Parquet: {exc}", hint="Check that the file is Parquet."
        ) from exc
    return _table_rows(table)


def _table_rows(table: Any) -> Iterator[dict[str, Any]]:
    for batch in table.to_batches():
        yield from batch.to_pylist()


def _hub_source(source: str, *, config: str | None, split: str, revision: str | None) -> Source:
    commit = _hub_commit(source, revision)
    key = "\0".join(["hub", source, config or "", split, commit])
    record = {
        "kind": "hub",
        "repo_id": source,
        "config": config,
        "split": split,
        "revision": revision,
        "commit": commit,
    }

    def load() -> tuple[list[str], Rows]:
        from datasets import load_dataset

        try:
            ds = load_dataset(source, name=config, split=split, revision=commit)
        except Exception as exc:  # datasets' own errors say what exists (configs, splits)
            raise ImportSourceError(
                source,
                f"datasets could not load it ({type(exc).__name__}: {exc})",
                hint="Check --config and --split against the dataset's configs and splits.",
            ) from exc
        table = ds.with_format("arrow")[:]
        return ds.column_names, lambda cols: _table_rows(table.select(cols))

    return Source(source, record, hashlib.sha256(key.encode()).hexdigest()[:16], load)


def _hub_commit(repo_id: str, revision: str | None) -> str:
    """The commit `revision` (default: main) of the dataset; a clear error if there is none."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = HfApi().dataset_info(repo_id, revision=revision)
    except RevisionNotFoundError as exc:
        raise ImportSourceError(
            repo_id,
            f"the dataset has no revision {revision!r}",
            hint="Give a branch, tag or commit of the dataset, or leave --revision out (main).",
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ImportSourceError(
            repo_id,
            "no such dataset on the Hub (or it is private and the token cannot read it)",
            hint=f"Check the id; for a private dataset set HF_TOKEN. {SOURCE_HINT}",
        ) from exc
    except Exception as exc:  # offline mode, the network, any other answer of the Hub
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise HubNetworkError(
            repo_id,
            f"cannot read the dataset from the Hub ({type(exc).__name__}: {first})",
            hint="Check the network, HF_ENDPOINT and HF_HUB_OFFLINE, then import again.",
        ) from exc
    return str(info.sha)
