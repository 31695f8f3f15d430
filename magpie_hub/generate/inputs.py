"""Text inputs of the seeded recipes: seed instructions, topics and corpora, read from a
text file, a folder of text files, a JSON lines / Parquet / CSV file (one column) or a Hub
dataset (through `import_sources`). Every problem is an `ImportSourceError` with a hint,
raised before a build folder is touched.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magpie_hub.config import StrictModel
from magpie_hub.errors import ImportSourceError
from magpie_hub.generate import import_sources

TEXT_SUFFIXES = {".txt", ".md"}


class TextSource(StrictModel):
    """Where a recipe's texts come from (a config section)."""

    source: str = "builtin"
    """`builtin` (the recipe's own small set), a .txt file, a folder of .txt files, a
    .jsonl/.parquet/.csv file or a Hub dataset id NAMESPACE/NAME."""
    column: str | None = None
    """The text column of a table (default: the first of the recipe's usual names)."""
    split: str = "train"
    subset: str | None = None
    """A Hub dataset's config name."""
    revision: str | None = None
    """A Hub dataset's branch, tag or commit (default: main)."""

    def read(
        self, *, what: str, columns: tuple[str, ...], builtin: Path, lines: bool = False
    ) -> Texts:
        """The texts; `builtin` is the file `source = "builtin"` stands for."""
        source = str(builtin) if self.source == "builtin" else self.source
        texts = read_texts(
            source,
            what=what,
            columns=columns,
            column=self.column,
            lines=lines,
            split=self.split,
            subset=self.subset,
            revision=self.revision,
        )
        if self.source == "builtin":
            return Texts(texts.texts, {**texts.record, "kind": "builtin"})
        return texts


@dataclass(frozen=True)
class Texts:
    """The texts read from one source, and the record the card and rows keep of it."""

    texts: list[str]
    record: dict[str, Any]
    """{kind, name, column, sha256 or commit, read, empty}."""


def read_texts(
    source: str,
    *,
    what: str,
    columns: tuple[str, ...],
    column: str | None = None,
    lines: bool = False,
    split: str = "train",
    subset: str | None = None,
    revision: str | None = None,
) -> Texts:
    """The non-empty texts of `source`. `column` (else the first of `columns` the source
    has) names the text column of a table. A plain text file is one text, or one text per
    line with `lines`; a folder holds one text per .txt/.md file."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise ImportSourceError(
                source, f"the folder holds no .txt or .md file ({what})", hint=_hint(what)
            )
        raw = [p.read_text(encoding="utf-8", errors="replace") for p in files]
        record = {
            "kind": "folder",
            "name": path.name,
            "files": len(files),
            "sha256": _digest(files),
        }
        return _finish(source, what, raw, {**record, "column": None})
    if path.suffix.lower() in TEXT_SUFFIXES:
        if not path.is_file():
            raise ImportSourceError(source, "no such file", hint=_hint(what))
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ImportSourceError(source, "is not UTF-8 text", hint=_hint(what)) from exc
        raw = text.splitlines() if lines else [text]
        record = {"kind": "file", "name": path.name, "sha256": _digest([path]), "column": None}
        return _finish(source, what, raw, record)
    found = import_sources.resolve(source, config=subset, split=split, revision=revision)
    names, read = found.load()
    wanted = column or next((c for c in columns if c in names), None)
    if wanted is None or wanted not in names:
        asked = repr(column) if column else f"any of {', '.join(columns)}"
        raise ImportSourceError(
            source,
            f"has no column {asked} ({what}); its columns: {', '.join(names) or '(none)'}",
            columns=names,
            hint='Name the text column in the config (`column = "..."`).',
        )
    raw = [r[wanted] for r in read([wanted])]
    record = {**_public(found.record), "name": found.record.get("path") or source}
    return _finish(source, what, raw, {**record, "column": wanted})


def _finish(source: str, what: str, raw: list[Any], record: dict[str, Any]) -> Texts:
    texts = [t.strip() for t in raw if isinstance(t, str) and t.strip()]
    if not texts:
        raise ImportSourceError(source, f"holds no {what} (no non-empty text)", hint=_hint(what))
    return Texts(texts, {**record, "read": len(raw), "empty": len(raw) - len(texts)})


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None and k != "path"}


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _hint(what: str) -> str:
    return (
        f"Give {what} as a .txt file, a folder of .txt files, a .jsonl/.parquet/.csv file "
        "with a text column, or a Hub dataset id NAMESPACE/NAME."
    )
