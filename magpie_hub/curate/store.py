"""The tag store: one tagger's values for one cache key (its model and settings).

It lives under BUILD/.magpie/curate/<tagger>-<key>/ (`BuildFolder.tag_store`) as
committed chunks: a Parquet file of `uuid` + the stored columns + `_error`, and a JSON
marker listing the uuids. A chunk counts once its marker exists, so a killed run loses
at most the batches in flight, and a re-run computes exactly the rows no marker lists.
`TagStore` reads it by uuid a slice at a time: the markers say which chunk holds each
uuid (the first commit of a uuid wins), so no read holds the whole store.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from magpie_hub.build import atomic_write

ERROR = "_error"
"""Stored column: why a tag could not be computed (None when it was)."""


def done_key(tagger: str) -> str:
    """Row key under which a step leaves its stored values for the sink."""
    return f"_tag_{tagger}"


def store_features(columns: dict[str, Any]) -> Any:
    """`datasets.Features` of a store's chunks: uuid, the stored columns (row types), error."""
    from magpie_hub.row_types import features

    return features({"uuid": "string", **columns, ERROR: "string"})


def commit_chunk(folder: Path, schema_json: str, rows: list[dict[str, Any]], tagger: str) -> None:
    """Commit the values the steps left on `rows` (under `done_key(tagger)`) as a chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features

    features = Features.from_dict(json.loads(schema_json))
    records = [
        {"uuid": r["uuid"], **{c: r[done_key(tagger)].get(c) for c in features if c != "uuid"}}
        for r in rows
    ]
    table = pa.Table.from_pylist(records, schema=features.arrow_schema)
    stem = f"chunk-{uuid.uuid4().hex[:12]}"
    atomic_write(folder / f"{stem}.parquet", lambda p: pq.write_table(table, p))
    marker = json.dumps({"uuids": [r["uuid"] for r in rows]})
    atomic_write(folder / f"{stem}.json", lambda p: p.write_text(marker))


class CommittedCount:
    """How many values a store's markers list, re-counted cheaply while a run adds chunks
    (each marker is read once: markers never change)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seen: dict[str, int] = {}

    def __call__(self) -> int:
        for marker in self.folder.glob("chunk-*.json"):
            if marker.name not in self._seen:
                self._seen[marker.name] = len(json.loads(marker.read_text())["uuids"])
        return sum(self._seen.values())


class TagStore:
    """The committed chunks of one store, indexed by uuid (read once, at creation)."""

    def __init__(self, folder: Path) -> None:
        import numpy as np
        import pyarrow as pa

        self.folder = folder
        self.markers = sorted(folder.glob("chunk-*.json"))
        pieces, chunk_of, position = [], [], []
        for c, marker in enumerate(self.markers):
            listed = json.loads(marker.read_text())["uuids"]
            pieces.append(pa.array(listed, pa.string()))
            chunk_of.append(np.full(len(listed), c, np.int32))
            position.append(np.arange(len(listed), dtype=np.int32))
        self.uuids = pa.chunked_array(pieces, pa.string()).combine_chunks()
        self._chunk = np.concatenate(chunk_of) if chunk_of else np.zeros(0, np.int32)
        self._position = np.concatenate(position) if position else np.zeros(0, np.int32)

    def locate(self, uuids: Any) -> Any:
        """Where each of `uuids` (a pyarrow string array) is stored: a numpy int64 array,
        -1 for a uuid no chunk holds."""
        import pyarrow.compute as pc

        found = pc.index_in(uuids, value_set=self.uuids)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")

    def has(self, uuids: Any) -> Any:
        """A numpy bool array: which of `uuids` have a committed value."""
        return self.locate(uuids) >= 0

    def take(self, where: Any) -> Any:
        """The stored rows at `where` (from `locate`, none -1), in that order, as a pyarrow
        Table (uuid, the stored columns, `_error`): reads only the chunks that hold them."""
        import pyarrow.parquet as pq

        from magpie_hub.row_streams import gather, read_parquet

        if not len(where):
            return pq.read_schema(self.markers[0].with_suffix(".parquet")).empty_table()
        read = lambda c: read_parquet(self.markers[c].with_suffix(".parquet"))  # noqa: E731
        return gather(self._chunk[where], self._position[where], read)


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
