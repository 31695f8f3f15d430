"""The build folder: committed chunks while running, then Parquet shards and manifest.json.

BUILD/manifest.json                what was built, how, and the counts
BUILD/data/train-00000-of-0000N.parquet
BUILD/.magpie/chunks/              one Parquet + JSON marker per finished batch
BUILD/.magpie/distilabel/          distilabel's pipeline cache and log
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magpie_hub.errors import BuildFolderError

MANIFEST = "manifest.json"
ROWS_PER_SHARD = 50_000


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
        self._markers: dict[str, dict[str, Any]] = {}

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        try:
            return dict(json.loads(self.manifest_path.read_text()))
        except json.JSONDecodeError as exc:
            raise BuildFolderError(
                self.root,
                f"{MANIFEST} is not valid JSON ({exc})",
                hint="Use --force to start over.",
            ) from exc

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

    def consolidate(self, features: Any, num_rows: int) -> list[Path]:
        """Write the committed rows (index < num_rows, each once, in order) as shards."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables: list[Any] = []
        seen: set[int] = set()
        for marker in sorted(self.chunks.glob("chunk-*.json")):
            indices = self._read_marker(marker)["written"]
            table = pq.read_table(marker.with_suffix(".parquet"))
            keep = [n for n, i in enumerate(indices) if i < num_rows and i not in seen]
            seen.update(indices[n] for n in keep)
            table = table.take(pa.array(keep, pa.int64())).append_column(
                "__row", pa.array([indices[n] for n in keep], pa.int64())
            )
            tables.append(table)
        schema = features.arrow_schema
        merged = (
            pa.concat_tables(tables).sort_by("__row").drop_columns(["__row"])
            if tables
            else schema.empty_table()
        )
        # Only the top-level shards: data/<view>/ folders (e.g. `reviewed`) are kept.
        self.data.mkdir(parents=True, exist_ok=True)
        for old in self.data.glob("*.parquet"):
            old.unlink()
        count = max(1, -(-merged.num_rows // ROWS_PER_SHARD))
        paths = []
        for n in range(count):
            path = self.data / f"train-{n:05d}-of-{count:05d}.parquet"
            part = merged.slice(n * ROWS_PER_SHARD, ROWS_PER_SHARD).cast(schema)
            pq.write_table(part, path)
            paths.append(path)
        return paths

    def rows(self) -> list[dict[str, Any]]:
        """The consolidated rows, in order."""
        import pyarrow.parquet as pq

        shards = sorted(self.data.glob("*.parquet"))
        return [r for path in shards for r in pq.read_table(path).to_pylist()]

    def write_views(self, views: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Write each `registry.View` as data/<name>/ shards; returns their counts. An empty
        view writes no shard (a zero-row Parquet file is not a loadable config)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        counts = {}
        for name, view in views.items():
            folder = self.data / name
            shutil.rmtree(folder, ignore_errors=True)
            counts[name] = {"rows": len(view.rows), **view.counts}
            if not view.rows:
                continue
            folder.mkdir(parents=True)
            table = pa.Table.from_pylist(view.rows, schema=view.features.arrow_schema)
            pq.write_table(table, folder / "train-00000-of-00001.parquet")
        return counts

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
        tmp.replace(self.manifest_path)
