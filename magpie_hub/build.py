"""The build folder: committed chunks while running, then Parquet shards and manifest.json.

`BuildFolder` is the one owner of this layout; nothing else spells out these paths.

BUILD/manifest.json                what was built, how, and the counts
BUILD/data/train-00000-of-0000N.parquet    config `default`
BUILD/data/<view>/*.parquet        derived views (sft, dpo, filtered, reviewed), one config each
BUILD/reviews/<ws>.<dataset>.json  every Argilla response pulled, merged across pulls
BUILD/.magpie/chunks/              one Parquet + JSON marker per finished batch
BUILD/.magpie/distilabel/          distilabel's pipeline cache and log
BUILD/.magpie/curate/<tagger>-<key>/  committed tag chunks (Parquet + JSON marker)
BUILD/.magpie/publish.json         the publish stages' content hashes
BUILD/.magpie/release/             the release tree the card stage staged for a push
BUILD/.magpie/shards.new/          curate's rewritten shards, before they replace data/*.parquet
BUILD/.magpie/picked/              the buckets of the filtered view's shuffle, while it is written

A folder has one writer at a time: commands that change it run under `writer()`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magpie_hub.errors import BuildFolderError

if TYPE_CHECKING:
    from magpie_hub.row_streams import ParquetRows
    from magpie_hub.row_types import RowTypes

MANIFEST = "manifest.json"
ROWS_PER_SHARD = 50_000
DEFAULT_CONFIG = "default"
CURATED_VIEWS = ("filtered",)
"""Views `magpie-hub curate` derives from the tagged rows."""


def atomic_write(path: Path, write: Any) -> None:
    """`write(tmp_path)`, fsync, then rename over `path`: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)


def write_json(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write `data` as JSON atomically."""
    text = json.dumps(data, indent=indent, default=str) + "\n"
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def read_json(path: Path, what: str, *, hint: str) -> Any:
    """Read a JSON state file; a damaged one is a `BuildFolderError` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BuildFolderError(path, f"{what} is damaged ({exc})", hint=hint) from exc


@dataclass
class ChunkState:
    """What the committed chunks settle: rows written, dropped (and why), failed."""

    written: list[int] = field(default_factory=list)
    dropped: dict[int, str] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)

    @property
    def settled(self) -> set[int]:
        return set(self.written) | set(self.dropped)

    def dropped_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(self.dropped.values()).items()))


class BuildFolder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / ".magpie"
        self.chunks = self.work / "chunks"
        self.cache = self.work / "distilabel"
        self.data = root / "data"
        self.manifest_path = root / MANIFEST
        self.publish_state = self.work / "publish.json"
        self.watch_state = self.work / "watch.json"
        self.engine_events = self.work / "engine-events.jsonl"
        """What engines reported during the last run (servers that failed, requests moved)."""
        self.release = self.work / "release"
        self.reviews = root / "reviews"
        self._markers: dict[str, dict[str, Any]] = {}

    def writer(self) -> AbstractContextManager[None]:
        """Hold the folder's one-writer lock for a block; another process holding it gives
        `BuildLockedError` naming its PID (see `folder_lock`)."""
        from magpie_hub.folder_lock import hold

        return hold(self.root)

    def view_dir(self, name: str) -> Path:
        return self.data / name

    def tag_store(self, tagger: str, key: str) -> Path:
        """Committed tag chunks of one tagger with one cache key (its model and settings)."""
        return self.work / "curate" / f"{tagger}-{key}"

    def shards(self) -> list[Path]:
        """The top-level shards (config `default`), in order."""
        return sorted(self.data.glob("*.parquet"))

    def schema(self) -> Any:
        """The Arrow schema of the rows; a clear error when data/ has no shard."""
        import pyarrow.parquet as pq

        shards = self.shards()
        if not shards:
            raise BuildFolderError(
                self.root,
                "the build has no rows on disk (no data/*.parquet)",
                hint="Re-run the command that made it (`generate` or `import`) to write them.",
            )
        return pq.read_schema(shards[0])

    def configs(self) -> dict[str, list[Path]]:
        """Parquet shards by config: data/*.parquet is `default`, data/<view>/ a view."""
        configs: dict[str, list[Path]] = {}
        if top := self.shards():
            configs[DEFAULT_CONFIG] = top
        for view in sorted(p for p in self.data.glob("*") if p.is_dir()):
            if shards := sorted(view.glob("*.parquet")):
                configs[view.name] = shards
        return configs

    def data_files(self) -> list[str]:
        """Every Parquet file under data/, relative to the build folder."""
        return sorted(str(p.relative_to(self.root)) for p in self.data.rglob("*.parquet"))

    def review_archive(self, workspace: str, dataset: str) -> Path:
        return self.reviews / f"{workspace}.{dataset}.json"

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        return dict(
            read_json(
                self.manifest_path,
                MANIFEST,
                hint="Restore it from a copy, or start the build over (`magpie-hub generate` "
                "or `import` with --force).",
            )
        )

    def complete_manifest(self) -> dict[str, Any]:
        """The manifest of a finished build; a clear error for anything else."""
        manifest = self.read_manifest()
        if manifest is None:
            raise BuildFolderError(
                self.root,
                "not a build folder (no manifest.json)",
                hint="Pass the --out folder of `magpie-hub generate` or `magpie-hub import`.",
            )
        if manifest.get("status") != "complete":
            raise BuildFolderError(
                self.root,
                f"the build is {manifest.get('status', 'unfinished')}, not complete",
                hint="Re-run the same `magpie-hub generate` command to finish it.",
            )
        return manifest

    def prepare(self, identity: dict[str, str], *, force: bool) -> bool:
        """Make the folder ready for a build with this identity (recipe, config and model
        fingerprints); True when it resumes an earlier run of the same build."""
        manifest = self.read_manifest()
        if manifest is None and self.root.exists() and any(self.root.iterdir()) and not force:
            raise BuildFolderError(
                self.root,
                "exists, is not empty and holds no magpie-hub build",
                hint="Choose another --out, or pass --force to write into it anyway.",
            )
        if manifest is not None:
            same = all(manifest.get(k) == v for k, v in identity.items())
            if not same and not force:
                raise BuildFolderError(
                    self.root,
                    "was built from a different config or model (recipe, settings or model file "
                    "differ)",
                    hint="Use another --out, or --force to discard that build and start over.",
                )
            if not same:
                self.clear()
                manifest = None
        self.chunks.mkdir(parents=True, exist_ok=True)
        if manifest is None:  # claim the folder before any work, so a kill leaves it resumable
            self.write_manifest({**identity, "status": "running"})
        return manifest is not None

    def clear(self) -> None:
        self._markers.clear()
        for path in (self.work, self.data):
            shutil.rmtree(path, ignore_errors=True)
        self.manifest_path.unlink(missing_ok=True)

    def chunk_state(self) -> ChunkState:
        """Read every committed marker; a Parquet without its marker does not count."""
        state = ChunkState()
        for marker in sorted(self.chunks.glob("chunk-*.json")):
            data = self._read_marker(marker)
            state.written += data["written"]
            state.dropped.update({int(k): v for k, v in data["dropped"].items()})
            state.failed |= set(data["failed"])
        state.failed -= state.settled
        return state

    def _read_marker(self, marker: Path) -> dict[str, Any]:
        """Markers never change once written, so each is read from disk once."""
        if marker.name not in self._markers:
            self._markers[marker.name] = json.loads(marker.read_text())
        return self._markers[marker.name]

    def pending(self, num_rows: int) -> list[int]:
        settled = self.chunk_state().settled
        return [i for i in range(num_rows) if i not in settled]

    def consolidate(
        self, features: RowTypes, num_rows: int, *, keep: int | None = None
    ) -> list[Path]:
        """Write the committed rows (index < num_rows, each once, in order; with `keep`, the
        first `keep` of them) as shards, one shard at a time: the markers say where each row
        is, and a shard reads only the chunks that hold its rows."""
        from array import array

        import numpy as np

        from magpie_hub.row_streams import gather, read_parquet
        from magpie_hub.row_types import shard_schema

        markers = sorted(self.chunks.glob("chunk-*.json"))
        chunk_of, position, row_of = array("q"), array("q"), array("q")
        seen: set[int] = set()
        for c, marker in enumerate(markers):
            indices = self._read_marker(marker)["written"]
            picked = [n for n, i in enumerate(indices) if i < num_rows and i not in seen]
            seen.update(indices[n] for n in picked)
            chunk_of.extend([c] * len(picked))
            position.extend(picked)
            row_of.extend(indices[n] for n in picked)
        del seen
        order = np.argsort(np.frombuffer(row_of, np.int64), kind="stable")[:keep]
        chunks = np.frombuffer(chunk_of, np.int64)[order]
        positions = np.frombuffer(position, np.int64)[order]
        schema = shard_schema(features)

        def shard(n: int) -> Any:
            """Rows n*ROWS_PER_SHARD... in order, taken from the chunks that hold them."""
            part = slice(n * ROWS_PER_SHARD, (n + 1) * ROWS_PER_SHARD)
            if not len(chunks[part]):
                return schema.empty_table()
            read = lambda c: read_parquet(markers[c].with_suffix(".parquet"))  # noqa: E731
            return gather(chunks[part], positions[part], read).cast(schema)

        return self._write_shard_files(max(1, -(-len(order) // ROWS_PER_SHARD)), shard)

    def write_shards(self, table: Any) -> list[Path]:
        """Replace the top-level shards (config `default`) with `table`, split by
        ROWS_PER_SHARD; data/<view>/ folders are kept, except views derived by curation,
        which no longer match the rows."""
        count = max(1, -(-table.num_rows // ROWS_PER_SHARD))
        return self._write_shard_files(
            count, lambda n: table.slice(n * ROWS_PER_SHARD, ROWS_PER_SHARD)
        )

    def rewrite_shards(self, make: Any) -> list[Path]:
        """Replace each top-level shard by `make(table, first_row)` (its rows, in order),
        shard by shard: written under .magpie/ and moved over the old shards once all are
        made, so a kill before that leaves the old ones. Curated views are removed."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from magpie_hub.row_streams import read_parquet

        staging = self.work / "shards.new"
        shutil.rmtree(staging, ignore_errors=True)
        made, first = [], 0
        for path in self.shards():
            table = read_parquet(path)
            rows, new = table.num_rows, make(table, first)
            del table
            atomic_write(staging / path.name, lambda p, new=new: pq.write_table(new, p))
            del new  # before the next shard is made
            pa.default_memory_pool().release_unused()
            made.append(staging / path.name)
            first += rows
        for view in CURATED_VIEWS:
            shutil.rmtree(self.view_dir(view), ignore_errors=True)
        paths = [p.replace(self.data / p.name) for p in made]
        staging.rmdir()
        return paths

    def _write_shard_files(self, count: int, part: Any) -> list[Path]:
        """Replace the top-level shards with `count` shards, shard n being `part(n)`, made
        and written one after another (see `write_shards`)."""
        import pyarrow.parquet as pq

        self.data.mkdir(parents=True, exist_ok=True)
        for old in self.data.glob("*.parquet"):
            old.unlink()
        for view in CURATED_VIEWS:
            shutil.rmtree(self.view_dir(view), ignore_errors=True)
        paths = []
        for n in range(count):
            path = self.data / f"train-{n:05d}-of-{count:05d}.parquet"
            table = part(n)
            atomic_write(path, lambda p, table=table: pq.write_table(table, p))
            del table  # before the next shard is made
            paths.append(path)
        return paths

    def rows(self) -> ParquetRows:
        """The consolidated rows, in order, read batch by batch each time they are iterated
        (`len` and indexing work too; `list()` them to hold them all)."""
        from magpie_hub.row_streams import ParquetRows

        return ParquetRows(self.shards())

    def write_views(self, views: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Write each `registry.View` as data/<name>/ shards, its rows converted and written
        a batch at a time (a view made from `rows()` streams; `PickedRows` are written as
        the Arrow tables they are read as); returns their counts. An empty
        view writes no shard (a zero-row Parquet file is not a loadable config)."""
        from magpie_hub.row_streams import write_rows, write_tables
        from magpie_hub.row_types import shard_schema

        counts = {}
        for name, view in views.items():
            folder = self.view_dir(name)
            shutil.rmtree(folder, ignore_errors=True)
            path = folder / "train-00000-of-00001.parquet"
            schema = shard_schema(view.features)
            tables = getattr(view.rows, "tables", None)  # rows picked as Arrow (PickedRows)
            written = (
                write_tables(path, tables(), schema)
                if tables
                else write_rows(path, view.rows, schema)
            )
            counts[name] = {"rows": written, **view.counts}
        return counts

    def picked(self, positions: Any) -> Any:
        """The top-level shards' rows at `positions`, in that order (`PickedRows`)."""
        from magpie_hub.row_streams import PickedRows

        return PickedRows(self.shards(), positions, self.work / "picked")

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json(self.manifest_path, manifest)
