"""Curation's streaming parts: the tag store read by uuid, the pipeline's input read from
the shards, rows gathered by position, shards rewritten one at a time, and a curate run
in many small shards equal to one in a single shard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curate_helpers import make_build

from magpie_hub.build import BuildFolder
from magpie_hub.curate.kit import TODO
from magpie_hub.curate.store import (
    ERROR,
    CommittedCount,
    TagStore,
    commit_chunk,
    done_key,
    store_features,
)
from magpie_hub.curate.tag_rows import TagRows
from magpie_hub.row_streams import PickedRows, gather


def commit(folder: Path, values: dict[str, str]) -> None:
    from datasets import Value

    schema = json.dumps(store_features({"language": Value("string")}).to_dict())
    rows = [{"uuid": u, done_key("t"): {"language": v, ERROR: None}} for u, v in values.items()]
    commit_chunk(folder, schema, rows, "t")


def test_the_store_is_read_by_uuid_in_the_order_asked(tmp_path: Path) -> None:
    commit(tmp_path, {"a": "EN", "b": "DE"})
    commit(tmp_path, {"c": "FR", "a": "ZH"})  # `a` again: the marker that sorts first wins
    count = CommittedCount(tmp_path)
    assert count() == 4
    commit(tmp_path, {"d": "IT"})
    assert count() == 5
    store = TagStore(tmp_path)
    listed = [json.loads(m.read_text())["uuids"] for m in store.markers]
    a_wins = "EN" if "b" in next(u for u in listed if "a" in u) else "ZH"
    where = store.locate(pa.array(["d", "x", "a", "c", "b"]))
    assert where[1] == -1 and (np.delete(where, 1) >= 0).all()
    assert store.has(pa.array(["x", "b"])).tolist() == [False, True]
    taken = store.take(where[[0, 2, 3, 4]]).to_pylist()
    assert [r["uuid"] for r in taken] == ["d", "a", "c", "b"]
    assert [r["language"] for r in taken] == ["IT", a_wins, "FR", "DE"]
    assert store.take(where[:0]).num_rows == 0


def test_gather_and_picked_rows_keep_the_order_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import magpie_hub.row_streams

    tables = [pa.table({"n": list(range(s, s + 5))}) for s in (0, 5, 10)]
    which, at = np.array([2, 0, 2, 1, 0]), np.array([4, 0, 1, 3, 4])
    assert gather(which, at, lambda i: tables[i]).column("n").to_pylist() == [14, 0, 11, 8, 4]
    paths = []
    for n, table in enumerate(tables):
        paths.append(tmp_path / f"{n}.parquet")
        pq.write_table(table, paths[-1])
    monkeypatch.setattr(magpie_hub.row_streams, "ROW_GROUP_ROWS", 2)  # blocks of 2 positions
    monkeypatch.setattr(magpie_hub.row_streams, "SHUFFLE_ROWS", 2)
    shuffled = PickedRows(paths, [13, 2, 7, 14, 0, 9], tmp_path / "scratch")
    assert len(shuffled) == 6 and [r["n"] for r in shuffled] == [13, 2, 7, 14, 0, 9]
    assert [t.num_rows for t in shuffled.tables()] == [2, 2, 2]
    assert not (tmp_path / "scratch").exists()
    ordered = PickedRows(paths, [1, 2, 6, 12, 13], tmp_path / "scratch")
    assert [r["n"] for r in ordered] == [1, 2, 6, 12, 13]
    assert [t.column("n").to_pylist() for t in ordered.tables()] == [[1, 2], [6, 12], [13]]


def test_tag_rows_sends_what_each_tagger_lacks_from_the_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import magpie_hub.build
    import magpie_hub.row_streams

    monkeypatch.setattr(magpie_hub.build, "ROWS_PER_SHARD", 3)
    monkeypatch.setattr(magpie_hub.row_streams, "READ_ROWS", 2)
    make_build(tmp_path)  # 8 rows in 3 shards, read 2 rows at a time
    shards = BuildFolder(tmp_path).shards()
    assert len(shards) == 3
    step = TagRows(
        name="rows",
        shards=[str(p) for p in shards],
        columns=["uuid", "instruction"],
        num_rows=8,
        todo={"a": [[1, 3], [7, 8]], "b": [[2, 5]]},
        batch_size=2,
    )
    sent = list(step.process())
    rows = [r for batch, _ in sent for r in batch]
    assert [(r["row_index"], r[TODO]) for r in rows] == [
        (1, ["a"]),
        (2, ["a", "b"]),
        (3, ["b"]),
        (4, ["b"]),
        (7, ["a"]),
    ]
    assert [r["uuid"] for r in rows] == [f"row-{r['row_index']:04d}" for r in rows]
    assert [len(b) for b, _ in sent] == [2, 2, 1] and [last for _, last in sent] == [0, 0, 1]
    resumed = [r["row_index"] for batch, _ in step.process(offset=3) for r in batch]
    assert resumed == [4, 7]
    read: list[str] = []
    batches = magpie_hub.row_streams.ParquetRows.batches
    monkeypatch.setattr(
        magpie_hub.row_streams.ParquetRows,
        "batches",
        lambda self: read.extend(p.name for p in self.paths) or batches(self),
    )
    step.todo = {"a": [[7, 8]]}  # only the last shard holds a row to tag
    assert [r["row_index"] for batch, _ in step.process() for r in batch] == [7]
    assert read == [shards[2].name]


def test_a_failed_rewrite_leaves_the_old_shards(tmp_path: Path, monkeypatch: Any) -> None:
    import magpie_hub.build

    monkeypatch.setattr(magpie_hub.build, "ROWS_PER_SHARD", 3)
    make_build(tmp_path)
    folder = BuildFolder(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.shards()}

    def make(table: Any, first: int) -> Any:
        if first:
            raise OSError("disk full")
        return table.append_column("tag", pa.array(["x"] * table.num_rows))

    with pytest.raises(OSError):
        folder.rewrite_shards(make)
    assert {p.name: p.read_bytes() for p in folder.shards()} == before
    firsts: list[int] = []
    paths = folder.rewrite_shards(lambda t, first: firsts.append(first) or t.slice(0, 1))
    assert firsts == [0, 3, 6] and [p.name for p in paths] == list(before)
    assert len(folder.rows()) == 3 and not (folder.work / "shards.new").exists()


def curated(root: Path, cli: Any) -> tuple[list[dict], list[dict], dict]:
    config = root / "curate.toml"
    config.write_text(
        '[curate]\ntaggers = ["language", "near_dup"]\nbatch_size = 3\n\n[filter]\n'
        'rules = [{column = "min_similar_uuid", op = "first_of_group"}]\n'
        "top_n = 4\nshuffle_seed = 3\n"
    )
    result = cli("curate", str(config), "--out", str(root / "build"), "--json")
    assert result.exit_code == 0, result.output
    folder = BuildFolder(root / "build")
    filtered = pq.read_table(folder.view_dir("filtered")).to_pylist()
    manifest = json.loads(folder.manifest_path.read_text())
    return list(folder.rows()), filtered, manifest


def test_curating_in_small_shards_equals_curating_in_one(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import magpie_hub.build

    make_build(tmp_path / "one" / "build")
    rows, filtered, manifest = curated(tmp_path / "one", cli)
    monkeypatch.setattr(magpie_hub.build, "ROWS_PER_SHARD", 3)
    make_build(tmp_path / "many" / "build")
    assert len(BuildFolder(tmp_path / "many" / "build").shards()) == 3
    rows3, filtered3, manifest3 = curated(tmp_path / "many", cli)
    assert rows3 == rows and filtered3 == filtered
    assert len(filtered) == 4 and {"language", "min_similar_uuid"} <= set(rows[0])
    for key in ("filter", "views"):
        assert manifest3[key] == manifest[key]
    assert manifest3["curate"]["taggers"] == manifest["curate"]["taggers"]
