"""Joining the taggers' stored values onto the rows, a shard at a time.

`TagJoin` locates every row's value in each tag store once (numpy positions, one per
row), then hands out the tag columns of any run of rows as Arrow: a row-local tagger's
`finalize` (or its stored columns) on just those rows, a `whole_build` tagger's
(near-duplicates) from its finalize over every row, made once. The columns each tagger
reports are fixed by the first run of rows asked for, so every shard has one schema.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magpie_hub.curate.kit import TagContext
from magpie_hub.curate.store import ERROR, TagStore
from magpie_hub.errors import CurateIncompleteError
from magpie_hub.registry import Tagger


def build_uuids(shards: list[Path]) -> Any:
    """The `uuid` column of every row, in build order, as one pyarrow string array."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [pq.read_table(p, columns=["uuid"]).column(0) for p in shards]
    chunks = [c for column in columns for c in column.cast(pa.string()).chunks]
    return pa.chunked_array(chunks, pa.string()).combine_chunks()


@dataclass
class TagJoin:
    taggers: list[Tagger]
    ctx: TagContext
    stores: dict[str, TagStore]
    where: dict[str, Any]
    """Tagger -> each row's position in its store (numpy int64, build order)."""
    present: dict[str, list[str]] = field(default_factory=dict)
    """Tagger -> the columns it gives, in `Tagger.columns` order (set by the first call)."""
    errors: dict[str, Counter[str]] = field(default_factory=dict)
    _whole: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def locate(
        cls,
        taggers: list[Tagger],
        ctx: TagContext,
        stores: dict[str, TagStore],
        uuids: Any,
        *,
        build: Path,
        log: Path,
    ) -> TagJoin:
        """Find every row in each tagger's store; `CurateIncompleteError` (per tagger,
        the rows no committed chunk holds) when any row lacks a value."""
        where = {t.name: stores[t.name].locate(uuids) for t in taggers}
        missing = {name: int((w < 0).sum()) for name, w in where.items() if (w < 0).any()}
        if missing:
            raise CurateIncompleteError(build=build, missing=missing, log=log)
        errors = {t.name: Counter[str]() for t in taggers}
        return cls(taggers, ctx, stores, where, errors=errors)

    def columns(self, start: int, stop: int) -> list[Any]:
        """Each tagger's columns for rows start..stop, as pyarrow Tables (taggers' order)."""
        return [self._columns(tagger, start, stop) for tagger in self.taggers]

    def _columns(self, tagger: Tagger, start: int, stop: int) -> Any:
        if tagger.whole_build and tagger.finalize is not None:
            return self._whole_build(tagger).slice(start, stop - start)
        stored = self.stores[tagger.name].take(self.where[tagger.name][start:stop])
        self.errors[tagger.name].update(e for e in stored.column(ERROR).to_pylist() if e)
        if tagger.finalize is None:
            names = [c for c in tagger.columns if c in stored.column_names]
            self.present.setdefault(tagger.name, names)
            return stored.select(self.present[tagger.name])
        return self._finalized(tagger, tagger.finalize(stored, self.ctx))

    def _whole_build(self, tagger: Tagger) -> Any:
        """A whole-build tagger's columns for every row, from one finalize (made once)."""
        if tagger.name not in self._whole:
            stored = self.stores[tagger.name].take(self.where[tagger.name])
            self.errors[tagger.name].update(e for e in stored.column(ERROR).to_pylist() if e)
            assert tagger.finalize is not None  # _columns checked
            values = tagger.finalize(stored, self.ctx)
            del stored
            self._whole[tagger.name] = self._finalized(tagger, values)
        return self._whole[tagger.name]

    def _finalized(self, tagger: Tagger, values: Any) -> Any:
        """A finalize's rows (dicts, or a pyarrow Table) as a Table of the columns given."""
        import pyarrow as pa

        if isinstance(values, pa.Table):
            given = values.column_names
        else:
            given = [c for c in tagger.columns if any(c in v for v in values)]
        self.present.setdefault(tagger.name, [c for c in tagger.columns if c in given])
        schema = self._schema(tagger)
        if isinstance(values, pa.Table):
            return values.select(schema.names).cast(schema)
        return pa.Table.from_pylist(values, schema=schema)

    def _schema(self, tagger: Tagger) -> Any:
        return self.features(tagger).arrow_schema

    def features(self, tagger: Tagger | None = None) -> Any:
        """`datasets.Features` of the tag columns given (of one tagger, or all in order)."""
        from magpie_hub.row_types import features

        taggers = [tagger] if tagger else self.taggers
        return features({c: t.columns[c] for t in taggers for c in self.present[t.name]})

    def report(self, rows: int) -> dict[str, Any]:
        """Per tagger: the columns given, errors by reason, rows tagged and its plugin."""
        return {
            t.name: {
                "columns": self.present[t.name],
                "errors_by_reason": dict(sorted(self.errors[t.name].items())),
                "tagged": rows - sum(self.errors[t.name].values()),
                "plugin": t.plugin,
            }
            for t in self.taggers
        }
