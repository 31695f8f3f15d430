"""A million rows: consolidating, carding and publishing stream (no step holds all rows).

The memory tests run `magpie-hub publish --local` on a synthetic build whose generation
has just finished (`benchmarks/synthetic_build.py`: every batch committed by the real sink,
no model), so the one process consolidates, writes the views, cards and writes the tree.
It runs under an address-space limit (RLIMIT_AS): a tiny build's peak plus a budget that
streaming fits in and holding every row does not. The equality tests pin the streamed
results to what whole-table code computes.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magpie_hub.row_types import shard_schema

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from synthetic_build import write_build, write_tags

MIB = 2**20
PUBLISH = """
import atexit, runpy, sys
import magpie_hub.build, magpie_hub.row_streams
rows = int(sys.argv.pop(1))  # rows per shard and per written row group (0: as shipped)
if rows:
    magpie_hub.build.ROWS_PER_SHARD = magpie_hub.row_streams.ROW_GROUP_ROWS = rows
    magpie_hub.row_streams.CONVERT_ROWS = rows
def peak():
    status = open("/proc/self/status").read()
    sys.stderr.write("VmPeak " + status.split("VmPeak:")[1].split()[0] + "\\n")
atexit.register(peak)
sys.argv[0] = "magpie-hub"
runpy.run_module("magpie_hub", run_name="__main__")
"""
ENV = {"MAGPIE_HUB_PLUGINS": "", "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}
"""No third-party plugins; Arrow on the system allocator, with few arenas, so that the
address space follows what is allocated (mimalloc reserves large regions up front)."""
linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")


def magpie_hub(root: Path, args: list[str], shard_rows: int, limit: int | None) -> tuple[int, str]:
    """`magpie-hub ARGS` in `root` in a fresh process (with an address-space `limit`): its
    exit code and stderr (which ends with the process's VmPeak)."""

    def ceiling() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-c", PUBLISH, str(shard_rows), *args],
        cwd=root, capture_output=True, text=True, preexec_fn=ceiling,
        env={**os.environ, **ENV},
    )  # fmt: skip
    return proc.returncode, proc.stderr


def publish_local(root: Path, shard_rows: int = 0, limit: int | None = None) -> tuple[int, str]:
    """`magpie-hub publish --local` on the build under `root`."""
    args = ["--repo", "scale/test", "--tag", "v1", "--out", str(root / "build")]
    return magpie_hub(
        root,
        ["publish", str(root / "magpie-hub.toml"), *args, "--local", str(root / "tree"), "--json"],
        shard_rows,
        limit,
    )


def vm_peak(stderr: str) -> int:
    return int(stderr.rsplit("VmPeak ", 1)[1].split()[0]) * 1024


def check_tree(root: Path, rows: int) -> None:
    """The tree holds every kept row once, in each config, and the card counts them."""
    manifest = json.loads((root / "tree" / "manifest.json").read_text())
    kept = manifest["counts"]["generated"]
    assert manifest["status"] == "complete" and kept == rows - manifest["counts"]["dropped"]
    for config in ("default", "sharegpt", "alpaca"):
        files = sorted((root / "tree" / "data" / config).glob("*.parquet"))
        assert sum(pq.read_metadata(f).num_rows for f in files) == kept, config
    uuids = pq.read_table(root / "tree" / "data" / "sharegpt", columns=["uuid"]).column(0)
    assert len(set(uuids.to_pylist())) == kept
    assert f"num_examples: {kept}" in (root / "tree" / "README.md").read_text()


def streamed_publish(
    tmp_path: Path, rows: int, batch_size: int, shard_rows: int, budget: int
) -> None:
    """Publish a tiny build, then one of `rows` under the tiny one's peak plus `budget`."""
    write_build(tmp_path / "tiny", 200, batch_size=8)
    code, err = publish_local(tmp_path / "tiny", shard_rows)
    assert code == 0, err[-3000:]
    limit = vm_peak(err) + budget
    write_build(tmp_path / "big", rows, batch_size=batch_size)
    code, err = publish_local(tmp_path / "big", shard_rows, limit=limit)
    assert code == 0, f"over {limit / MIB:.0f} MiB of address space?\n{err[-3000:]}"
    check_tree(tmp_path / "big", rows)


@linux_only
def test_publish_streams_with_small_shards(tmp_path: Path) -> None:
    """40,000 rows in shards and row groups of 1,000 rows, within 128 MiB more than a
    200-row build: streaming takes about 50 MiB more, holding every row (0.2.0) 390 MiB."""
    streamed_publish(tmp_path, 40_000, 64, 1_000, 128 * MIB)


@pytest.mark.slow
@linux_only
def test_a_million_row_publish_stays_within_a_memory_ceiling(tmp_path: Path) -> None:
    """1,000,000 rows (2.7 GiB as Arrow, several times that as dicts) published in one
    process within 1 GiB more than a 200-row build: streaming takes about 480 MiB more;
    0.2.0 peaked at 8.5 GiB resident. About 4 minutes on 2 cores."""
    streamed_publish(tmp_path, 1_000_000, 256, 0, 1024 * MIB)


def tagged_build(root: Path, rows: int, shard_rows: int) -> Path:
    """A consolidated synthetic build (shards of `shard_rows`) with language tags stored for
    all but its last 1% of rows; returns the curate config."""
    config, build = write_build(root, rows, batch_size=64)
    code, err = magpie_hub(
        root, ["generate", str(config), "--out", str(build), "-q"], shard_rows, None
    )
    assert code == 0, err[-3000:]
    return write_tags(config, build, untagged=0.01)


def test_curate_streams_with_small_shards(tmp_path: Path) -> None:
    """Curate (lingua tags the last 1% through the pipeline; join, filter with top_n and a
    shuffle, the filtered view) of 40,000 rows in shards of 1,000 rows, within 128 MiB
    more than a 200-row build: streaming takes about 24 MiB more, holding every row 228."""
    budget = 128 * MIB
    tiny = tagged_build(tmp_path / "tiny", 200, 1_000)
    curate = lambda root, config, limit: magpie_hub(  # noqa: E731
        root, ["curate", str(config), "--out", str(root / "build"), "-q"], 1_000, limit
    )
    code, err = curate(tmp_path / "tiny", tiny, None)
    assert code == 0, err[-3000:]
    limit = vm_peak(err) + budget
    big = tagged_build(tmp_path / "big", 40_000, 1_000)
    code, err = curate(tmp_path / "big", big, limit)
    assert code == 0, f"over {limit / MIB:.0f} MiB of address space?\n{err[-3000:]}"
    manifest = json.loads((tmp_path / "big" / "build" / "manifest.json").read_text())
    kept = manifest["counts"]["generated"]
    assert manifest["curate"]["computed_this_run"] == {"language": kept - round(kept * 0.99)}
    assert manifest["filter"]["funnel"][-1]["rows_after"] == kept * 3 // 10
    filtered = pq.read_table(tmp_path / "big" / "build" / "data" / "filtered")
    assert filtered.num_rows == kept * 3 // 10 == len(set(filtered.column("uuid").to_pylist()))


# Equality: streamed results against whole-table computations.


def messy_chunks(root: Path) -> tuple[Path, Any]:
    """A build's chunks with what resumes leave: a duplicate (other content) of a batch
    that sorts first, a retry batch of scattered rows, rows past num_rows."""
    _, build = write_build(root, 900, batch_size=7)
    chunks = build / ".magpie" / "chunks"
    markers = sorted(chunks.glob("chunk-*.json"))

    def add(stem: str, table: Any, written: list[int], note: str) -> None:
        column = table.schema.get_field_index("response")
        table = table.set_column(column, "response", pa.array([note] * table.num_rows))
        pq.write_table(table, chunks / f"{stem}.parquet")
        marker = {"written": written, "dropped": {}, "failed": []}
        (chunks / f"{stem}.json").write_text(json.dumps(marker))

    def read(marker: Path) -> tuple[Any, list[int]]:
        return pq.read_table(marker.with_suffix(".parquet")), json.loads(marker.read_text())[
            "written"
        ]

    table, written = read(markers[3])
    add(markers[3].stem[:-8] + "00000000", table, written, "duplicate")
    picks = [read(markers[k]) for k in (1, 40, 90, len(markers) - 2)]
    retry = pa.concat_tables([t.slice(0, 1) for t, _ in picks])
    add(f"chunk-{picks[0][1][0]:08d}-aaaaaaaa", retry, [w[0] for _, w in picks], "retry")
    from magpie_hub.plugins import get_registry

    return build, get_registry().recipe("magpie").features


def merged_whole(build: Path, features: Any, num_rows: int, keep: int | None) -> Any:
    """Consolidation as one table: every chunk read, concatenated, sorted (0.2.0's way)."""
    tables, seen = [], set()
    for marker in sorted((build / ".magpie" / "chunks").glob("chunk-*.json")):
        indices = json.loads(marker.read_text())["written"]
        table = pq.read_table(marker.with_suffix(".parquet"))
        picked = [n for n, i in enumerate(indices) if i < num_rows and i not in seen]
        seen.update(indices[n] for n in picked)
        rows = pa.array([indices[n] for n in picked], pa.int64())
        tables.append(table.take(pa.array(picked, pa.int64())).append_column("__row", rows))
    merged = pa.concat_tables(tables).sort_by("__row").drop_columns(["__row"])
    return (merged.slice(0, keep) if keep is not None else merged).cast(shard_schema(features))


@pytest.mark.parametrize("keep", [None, 700])
def test_consolidating_shard_by_shard_writes_the_whole_table_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int | None
) -> None:
    import magpie_hub.build
    from magpie_hub.build import BuildFolder

    build, features = messy_chunks(tmp_path)
    monkeypatch.setattr(magpie_hub.build, "ROWS_PER_SHARD", 200)
    whole = merged_whole(build, features, 850, keep)
    paths = BuildFolder(build).consolidate(features, 850, keep=keep)
    assert len(paths) == -(-whole.num_rows // 200) > 1
    assert {"duplicate", "retry"} <= set(whole.column("response").to_pylist())
    for n, path in enumerate(paths):
        expected = tmp_path / "expected.parquet"
        pq.write_table(whole.slice(n * 200, 200), expected)
        assert path.read_bytes() == expected.read_bytes(), path.name


def test_streamed_views_write_what_whole_lists_write(tmp_path: Path) -> None:
    from magpie_hub.build import BuildFolder
    from magpie_hub.generate.training_views import training_views

    build, features = messy_chunks(tmp_path)
    folder = BuildFolder(build)
    folder.consolidate(features, 900)
    rows = folder.rows()
    assert len(rows) == len(list(rows)) and rows[-1] == list(rows)[-1] and rows[2:4] == rows[2:4]
    views = training_views(rows, ["sharegpt", "alpaca"])
    counts = folder.write_views(views)
    whole = {name: list(view.rows) for name, view in views.items()}
    assert counts["alpaca"] == {
        "rows": len(whole["alpaca"]),
        "left_out": 0,
        "system_prompt_not_kept": len(whole["alpaca"]),
    }
    for name, made in whole.items():
        expected = tmp_path / f"{name}.parquet"
        schema = shard_schema(views[name].features)
        pq.write_table(pa.Table.from_pylist(made, schema=schema), expected)
        written = folder.view_dir(name) / "train-00000-of-00001.parquet"
        assert written.read_bytes() == expected.read_bytes()


def test_write_rows_in_row_groups_keeps_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import magpie_hub.row_streams as streams

    monkeypatch.setattr(streams, "CONVERT_ROWS", 3)
    monkeypatch.setattr(streams, "ROW_GROUP_ROWS", 7)
    schema = pa.schema([("i", pa.int64()), ("s", pa.list_(pa.string()))])
    rows = [{"i": i, "s": [str(i)] * (i % 3)} for i in range(30)]
    assert streams.write_rows(tmp_path / "a.parquet", iter(rows), schema) == 30
    assert pq.read_table(tmp_path / "a.parquet").to_pylist() == rows
    assert pq.read_metadata(tmp_path / "a.parquet").num_row_groups == 4  # 9, 9, 9, 3 rows
    assert streams.write_rows(tmp_path / "b.parquet", [], schema) == 0
    assert not (tmp_path / "b.parquet").exists()


def old_config_stats(path: Path) -> dict[str, Any]:
    """The card's statistics from every row as a dict (0.2.0's way)."""
    from magpie_hub.release.card import SCORE_COLUMNS, TEXT_COLUMNS

    rows = pq.read_table(path).to_pylist()
    lengths = {}
    for col in TEXT_COLUMNS:
        values = [len(r[col] or "") for r in rows]
        lengths[col] = {
            "min": min(values),
            "median": float(statistics.median(values)),
            "mean": round(statistics.fmean(values), 1),
            "max": max(values),
        }
    users = [sum(1 for m in r["conversation"] or [] if m["role"] == "user") for r in rows]
    keys = Counter(r["system_prompt_key"] or "(none)" for r in rows)
    scores = {}
    for col in SCORE_COLUMNS[:2]:
        present = [float(r[col]) for r in rows if r[col] is not None]
        scores[col] = {
            "rows": len(present),
            "mean": round(statistics.fmean(present), 3),
            "min": round(min(present), 3),
            "max": round(max(present), 3),
        }
    return {
        "rows": len(rows),
        "lengths": lengths,
        "turns": dict(sorted(Counter(users).items())),
        "categories": dict(sorted(keys.items(), key=lambda kv: (-kv[1], kv[0]))),
        "scores": scores,
    }


def test_card_statistics_by_batch_equal_the_row_by_row_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import magpie_hub.release.card as card

    rng = random.Random(3)
    texts = [None, "", "é", "naïve 😀 text", "x" * 700]
    msg = lambda role, text: {"role": role, "content": text}  # noqa: E731
    rows = []
    for i in range(1001):
        turns = [msg("user", "q"), msg("assistant", "a")] * rng.randint(0, 3)
        rows.append(
            {
                "instruction": rng.choice(texts),
                "response": rng.choice(texts) if i % 7 else "y" * i,
                "response_base": rng.choice(texts),
                "conversation": None if i % 11 == 0 else [msg("system", "s"), *turns],
                "system_prompt_key": rng.choice([None, "", "math", "coding", "b"]),
                "score": None if i % 5 == 0 else rng.uniform(-3, 3),
                "score_base": rng.choice([None, 1.0, 2.5]),
            }
        )
    path = tmp_path / "data" / "default" / "train.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    monkeypatch.setattr(card, "READ_ROWS", 64)
    stats = card.config_stats(tmp_path, "default", ["data/default/train.parquet"])
    old = old_config_stats(path)
    assert {k: getattr(stats, k) for k in old} == old
    assert stats.examples == [card._shorten(r) for r in rows[:2]]

    def old_plot() -> bytes:  # the histogram of every length, as 0.2.0 drew it
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
        for col in card.TEXT_COLUMNS:
            ax.hist([len(r[col] or "") for r in rows], bins=30, alpha=0.6, label=col)
        ax.set_xlabel("characters")
        ax.set_ylabel("rows")
        ax.set_title("Text lengths, config default")
        ax.legend()
        fig.tight_layout()
        fig.savefig(tmp_path / "old.png", format="png", metadata={"Software": None})
        plt.close(fig)
        return (tmp_path / "old.png").read_bytes()

    image = card.length_plot(tmp_path, "default", ["data/default/train.parquet"], None)
    assert image is not None and (tmp_path / image).read_bytes() == old_plot()


def test_a_review_sample_of_a_build_reads_one_column_and_picks_as_from_a_list(
    tmp_path: Path,
) -> None:
    from magpie_hub.errors import ReviewError
    from magpie_hub.review.sync import stratified_sample
    from magpie_hub.row_streams import ParquetRows

    rng = random.Random(5)
    rows = [
        {"uuid": f"u{i}", "k": rng.choice(["a", "b", "b", None]), "text": "x" * (i % 9)}
        for i in range(2000)
    ]
    paths = []
    for n, start in enumerate(range(0, len(rows), 700)):  # three shards, row groups of 100
        paths.append(tmp_path / f"train-{n}.parquet")
        pq.write_table(
            pa.Table.from_pylist(rows[start : start + 700]), paths[-1], row_group_size=100
        )
    full_reads = []

    class Spied(ParquetRows):
        def __iter__(self) -> Any:  # every row with every column: what a sample must avoid
            full_reads.append(1)
            return super().__iter__()

    streamed = Spied(paths)

    def from_list(n: int, column: str | None, seed: int) -> list[dict[str, Any]]:
        """What 0.2.0 picked: the sample drawn from a list of every row."""
        pick = random.Random(seed)
        if column is None:
            return sorted(pick.sample(rows, n), key=rows.index)
        groups: dict[Any, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(row[column], []).append(row)
        exact = {k: n * len(v) / len(rows) for k, v in groups.items()}
        take = {k: int(q) for k, q in exact.items()}
        rest = sorted(exact, key=lambda k: (-(exact[k] - take[k]), str(k)))
        for k in rest[: n - sum(take.values())]:
            take[k] += 1
        chosen = [r for k in sorted(groups, key=str) for r in pick.sample(groups[k], take[k])]
        return sorted(chosen, key=rows.index)

    for n, column, seed in [(37, "k", 3), (37, None, 3), (500, "k", 8), (1, "k", 0)]:
        expected = from_list(n, column, seed)
        assert stratified_sample(streamed, n, column, seed) == expected
        assert stratified_sample(rows, n, column, seed) == expected
    assert not full_reads
    assert stratified_sample(streamed, None, "k", 1) == rows
    with pytest.raises(ReviewError, match="no column 'nope'"):
        stratified_sample(streamed, 5, "nope", 1)
