"""Near-duplicate search at scale: `neighbours()` on planted duplicate groups, on 2 cores.

Writes N x 384 normalised float32 vectors (clustered like sentence embeddings: 1,000
topics, unrelated rows far apart), in chunks, to a raw file; then plants duplicates of
random earlier rows: 1% exact copies, 1% near copies (2 - 2 cos about 0.01, the
default threshold is 0.05), a quarter of them copies of a source that already has one
(groups of 3+), and copies of copies (chains). Each measurement runs in a fresh
subprocess (wall time and peak RSS from `os.wait4`), with 2 threads:

- `neighbours()` with the default settings on all N rows (IVF above `ivf_above`);
- the same, phase by phase (build: train, add; knn search; range search; the Python
  loops; the final union-find pass), in a copy of its code with timers;
- a proposed version: one k-NN scan (k = 16) instead of a k-NN scan plus a range scan
  (range search only for rows with 15+ duplicates), numpy instead of per-row Python,
  scipy's connected_components instead of union-find; agreement with neighbours();
- agreement of IVF with exact flat search on the first 50,000 rows (a prefix keeps
  every planted group whole: sources are earlier rows);
- flat against IVF at a few sizes (how `ivf_above` and `nprobe` are chosen);
- embedding rows/s of the packaged all-MiniLM-L6-v2.

Run it from the repository root:

    .venv/bin/python benchmarks/bench_dedup.py             # 1,000,000 rows
    .venv/bin/python benchmarks/bench_dedup.py --rows 200000 --sweep 50000

Targets (1M rows, 2 cores): at most 10 minutes, at most 4 GiB, recall >= 0.99.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
THREADS = 2
CHUNK = 65_536
TOPICS = 1_000
NEAR_NOISE = float(np.sqrt(0.01 / DIM))
"""Per-dimension noise of a near copy: 2 - 2 cos is about 0.01."""


# ---------------------------------------------------------------- data


def make_vectors(path: Path, rows: int, seed: int) -> np.ndarray:
    """Write `rows` x DIM float32 rows to `path` (raw, C order); return the planted
    (copy, source) pairs, ordered by copy."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=(rows, DIM))
    for start in range(0, rows, CHUNK):
        part = np.random.default_rng([seed, start])
        m = min(CHUNK, rows - start)
        block = centres[part.integers(0, TOPICS, m)]
        block += part.standard_normal((m, DIM), dtype=np.float32) / np.float32(np.sqrt(DIM))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    n_planted = int(0.02 * rows)
    copies = np.sort(rng.choice(np.arange(1, rows), size=n_planted, replace=False))
    near = rng.random(n_planted) < 0.5
    again = rng.random(n_planted) < 0.25
    sources = np.empty(n_planted, dtype=np.int64)
    for k, row in enumerate(copies):
        # a quarter copy a source that already has a copy: groups of 3+
        source = sources[rng.integers(0, k)] if again[k] and k > 0 else rng.integers(0, row)
        sources[k] = source
        vector = np.array(out[source])
        if near[k]:
            vector += rng.standard_normal(DIM).astype(np.float32) * np.float32(NEAR_NOISE)
            vector /= np.linalg.norm(vector)
        out[row] = vector
    out.flush()
    del out
    return np.stack([copies, sources], axis=1)


def load_rows(path: Path, rows: int) -> np.ndarray:
    """The first `rows` rows, read straight into one in-memory array."""
    return np.fromfile(path, dtype=np.float32, count=rows * DIM).reshape(rows, DIM)


def instructions(n: int) -> list[str]:
    """Short instruction-like strings, varied."""
    asks = [
        "How do I {} in Python?",
        "Explain how to {} to a beginner.",
        "What is the best way to {}?",
        "Write a short guide on how to {}.",
        "Can you help me {} quickly?",
        "Give three tips to {} at work.",
        "Why is it hard to {} without practice?",
        "Compare two ways to {} and say which is better.",
    ]
    tasks = [
        "sort a list of numbers",
        "learn French",
        "bake sourdough bread",
        "write a cover letter",
        "train for a marathon",
        "fix a leaking tap",
        "read a CSV file",
        "save money on groceries",
        "plan a trip to Japan",
        "prove that the square root of two is irrational",
        "set up a home network",
        "grow tomatoes on a balcony",
        "negotiate a salary",
        "debug a memory leak",
        "write a haiku about autumn",
        "explain photosynthesis",
        "choose a laptop for programming",
        "reduce stress before exams",
        "clean a cast iron pan",
        "summarise a research paper",
    ]
    return [
        asks[i % len(asks)].format(tasks[(i // len(asks)) % len(tasks)])
        + ("" if i < len(asks) * len(tasks) else f" (case {i})")
        for i in range(n)
    ]


# ---------------------------------------------------------------- children


def peak_gib() -> float:
    """This process's peak RSS (VmHWM), in GiB. Not ru_maxrss: Linux carries a parent's
    RSS over fork + exec into the child's ru_maxrss, so a small child of a big parent
    reads big (what `/usr/bin/time -v` and RUSAGE_CHILDREN report too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _limit_threads() -> None:
    import faiss

    faiss.omp_set_num_threads(THREADS)


def child_search(args: argparse.Namespace) -> dict[str, Any]:
    """neighbours() as curate calls it; roots and repeat counts saved for the parent."""
    _limit_threads()
    from magpie_hub.curate.neardup import neighbours

    vectors = load_rows(Path(args.vectors), args.rows)
    start = time.perf_counter()
    found = neighbours(vectors, args.threshold, ivf_above=args.ivf_above, nprobe=args.nprobe)
    seconds = time.perf_counter() - start
    np.save(args.result, np.stack([found.group_root, found.repeat_count, found.min_distance]))
    return {"seconds": seconds, "index": found.index, "peak_gib": peak_gib()}


def child_profile(args: argparse.Namespace) -> dict[str, Any]:
    """A copy of neighbours() (and build_index) with a timer around each phase."""
    _limit_threads()
    import faiss

    from magpie_hub.curate.neardup import QUERY_BATCH, UnionFind

    vectors = load_rows(Path(args.vectors), args.rows)
    t: dict[str, float] = {}

    def tick(name: str, since: float) -> float:
        now = time.perf_counter()
        t[name] = t.get(name, 0.0) + now - since
        return now

    n = len(vectors)
    mark = time.perf_counter()
    min_distance = np.full(n, np.nan, dtype=np.float64)
    repeat = np.zeros(n, dtype=np.int64)
    groups = UnionFind(n)
    if n <= args.ivf_above:
        index = faiss.IndexFlatIP(DIM)
        mark = tick("setup", mark)
    else:
        nlist = int(min(65536, max(64, 4 * np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(DIM)
        index = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, size=min(n, nlist * 64), replace=False)]
        mark = tick("setup", mark)
        index.train(sample)
        del sample
        mark = tick("train", mark)
    index.add(vectors)
    if n > args.ivf_above:
        index.nprobe = args.nprobe
    mark = tick("add", mark)
    min_ip = 1.0 - args.threshold / 2.0
    k = min(n, 3)
    unions = 0
    for start in range(0, n, QUERY_BATCH):
        query = vectors[start : start + QUERY_BATCH]
        ids_range = np.arange(start, start + len(query))
        sims, ids = index.search(query, k)
        mark = tick("knn search (faiss)", mark)
        for row, (sim_row, id_row) in enumerate(zip(sims, ids, strict=True)):
            others = [
                s for s, j in zip(sim_row, id_row, strict=True) if j >= 0 and j != start + row
            ]
            if others:
                min_distance[start + row] = max(0.0, 2.0 - 2.0 * float(max(others)))
        mark = tick("knn loop (python)", mark)
        lims, _, hits = index.range_search(query, float(min_ip))
        mark = tick("range search (faiss)", mark)
        for row, i in enumerate(ids_range):
            found = hits[lims[row] : lims[row + 1]]
            found = found[found != i]
            repeat[i] = len(found)
            for j in found:
                groups.union(int(i), int(j))
                unions += 1
            if len(found) and np.isnan(min_distance[i]):
                min_distance[i] = 0.0
        mark = tick("range loop + unions (python)", mark)
    roots = np.array([groups.find(i) for i in range(n)])
    tick("final find pass (python)", mark)
    _ = roots, np.round(min_distance, 6)
    return {"phases": t, "unions": unions, "peak_gib": peak_gib()}


def child_proposed(args: argparse.Namespace) -> dict[str, Any]:
    """The proposed version (same index), for comparison: see `proposed_neighbours`."""
    _limit_threads()
    from magpie_hub.curate.neardup import QUERY_BATCH, build_index

    vectors = load_rows(Path(args.vectors), args.rows)
    start = time.perf_counter()
    roots, repeat, min_distance, kind, phases = proposed_neighbours(
        vectors, args.threshold, args.ivf_above, args.nprobe, QUERY_BATCH, build_index
    )
    seconds = time.perf_counter() - start
    np.save(args.result, np.stack([roots, repeat, min_distance]))
    return {"seconds": seconds, "index": kind, "phases": phases, "peak_gib": peak_gib()}


PROPOSED_K = 16
"""Neighbours per k-NN query in the proposed version (range search only where all are
within the threshold)."""


def proposed_neighbours(
    vectors: np.ndarray,
    threshold: float,
    ivf_above: int,
    nprobe: int,
    batch: int,
    build_index: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, dict[str, float]]:
    """neighbours() with one scan of the index instead of two: a k-NN search (k = 16) gives
    the nearest other row and every duplicate of rows with fewer than k - 1 of them; only
    rows whose k-th hit is still under the threshold are range-searched. No per-row
    Python: numpy masks per batch, groups by scipy's connected_components, root = the
    smallest row of a component (what UnionFind gives)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def tick(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - mark
        mark = now

    n = len(vectors)
    index, kind = build_index(np.ascontiguousarray(vectors, np.float32), ivf_above, nprobe)
    tick("build (train + add)")
    min_ip = np.float32(1.0 - threshold / 2.0)
    min_distance = np.full(n, np.nan, dtype=np.float64)
    repeat = np.zeros(n, dtype=np.int64)
    pairs_a, pairs_b = [], []
    k = min(n, PROPOSED_K)
    for start in range(0, n, batch):
        query = vectors[start : start + batch]
        rows = np.arange(start, start + len(query))
        sims, ids = index.search(query, k)
        tick("knn search (faiss)")
        other = (ids >= 0) & (ids != rows[:, None])
        best = np.where(other, sims, -np.inf).max(axis=1)
        has = np.isfinite(best)
        min_distance[rows[has]] = np.maximum(0.0, 2.0 - 2.0 * best[has].astype(np.float64))
        within = other & (sims > min_ip)
        full = (ids[:, -1] >= 0) & (sims[:, -1] > min_ip)  # maybe more than k - 1 duplicates
        within[full] = False
        owner = np.broadcast_to(rows[:, None], ids.shape)[within]
        hits = ids[within]
        tick("numpy")
        if full.any():
            lims, _, found = index.range_search(query[full], float(min_ip))
            tick("range search, saturated rows (faiss)")
            extra_owner = np.repeat(rows[full], np.diff(lims).astype(np.int64))
            keep = found != extra_owner
            owner = np.concatenate([owner, extra_owner[keep]])
            hits = np.concatenate([hits, found[keep]])
        repeat[rows] = np.bincount(owner - start, minlength=len(rows))
        pairs_a.append(owner)
        pairs_b.append(hits)
        tick("numpy")
    a, b = np.concatenate(pairs_a), np.concatenate(pairs_b)
    min_distance[(repeat > 0) & np.isnan(min_distance)] = 0.0
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=True, connection="weak")
    first = np.full(label.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n))
    tick("groups (connected_components)")
    return first[label], repeat, np.round(min_distance, 6), kind, phases


def child_embed(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(THREADS)
    from magpie_hub.curate.neardup import Embedder, model_path

    texts = instructions(args.rows)
    start = time.perf_counter()
    embed = Embedder(model_path("packaged:all-minilm-l6-v2"))
    loaded = time.perf_counter()
    vectors = embed(texts, batch=args.batch)
    done = time.perf_counter()
    assert vectors.shape == (len(texts), DIM)
    return {"load_seconds": loaded - start, "seconds": done - loaded, "peak_gib": peak_gib()}


CHILDREN = {
    "search": child_search,
    "profile": child_profile,
    "proposed": child_proposed,
    "embed": child_embed,
}


# ---------------------------------------------------------------- parent


def run_child(what: str, **options: Any) -> tuple[dict[str, Any], float, float]:
    """(the child's JSON answer, its wall seconds, its peak RSS in GiB)."""
    cmd = [sys.executable, __file__, "--one", what]
    for key, value in options.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, **{v: str(THREADS) for v in _THREAD_VARS}}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    answer = json.loads(out.strip().splitlines()[-1])
    return answer, wall, answer.get("peak_gib", usage.ru_maxrss / 2**20)


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def recall(result: Path, planted: np.ndarray) -> float:
    roots = np.load(result)[0]
    return float(np.mean(roots[planted[:, 0]] == roots[planted[:, 1]])) if len(planted) else 1.0


def agreement(a: Path, b: Path) -> tuple[float, float, float]:
    """Share of rows with the same group root, with the same repeat count, and the largest
    difference of min_distance."""
    x, y = np.load(a), np.load(b)
    diff = np.abs(x[2] - y[2])
    diff = float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0
    return float(np.mean(x[0] == y[0])), float(np.mean(x[1] == y[1])), diff


def main() -> None:
    from magpie_hub.config import NearDupConfig

    defaults = NearDupConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000, help="rows compared with flat")
    parser.add_argument(
        "--sweep", default="10000,20000,50000,100000,200000", help="sizes ('' to skip)"
    )
    parser.add_argument(
        "--flat-max", type=int, default=100_000, help="sweep: above it, flat time is estimated"
    )
    parser.add_argument("--sweep-nprobe", default="8,16,32", help="nprobe values at sweep sizes")
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--ivf-above", type=int, default=defaults.ivf_above)
    parser.add_argument("--nprobe", type=int, default=defaults.nprobe)
    parser.add_argument("--embed-rows", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--proposed-nprobe", default="16,8", help="nprobe values of the proposed version"
    )
    parser.add_argument("--one", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--vectors", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(CHILDREN[args.one](args)))
        return
    sweep = [int(s) for s in args.sweep.split(",") if s]
    nprobes = [int(s) for s in args.sweep_nprobe.split(",") if s]
    size = max([args.rows, args.sample, *sweep])
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
        work = Path(tmp)
        vectors = work / "vectors.f32"
        started = time.perf_counter()
        planted = make_vectors(vectors, size, args.seed)
        print(
            f"data: {size:,} x {DIM} float32 rows, {len(planted):,} planted copies, "
            f"written in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        report(args, work, vectors, planted, sweep, nprobes)


def _planted(planted: np.ndarray, rows: int) -> np.ndarray:
    return planted[planted[:, 0] < rows]


def _search(
    work: Path, vectors: Path, rows: int, name: str, what: str = "search", **over: Any
) -> tuple[dict[str, Any], float, float, Path]:
    result = work / f"{name}.npy"
    options = {
        "rows": rows,
        "vectors": vectors,
        "result": result,
        "threshold": over["threshold"],
        "ivf_above": over["ivf_above"],
        "nprobe": over["nprobe"],
    }
    answer, wall, rss = run_child(what, **options)
    print(f"  {name}: {answer['seconds']:.1f} s, {rss:.2f} GiB", file=sys.stderr)
    return answer, wall, rss, result


def report(
    args: argparse.Namespace,
    work: Path,
    vectors: Path,
    planted: np.ndarray,
    sweep: list[int],
    nprobes: list[int],
) -> None:
    settings = {"threshold": args.threshold, "ivf_above": args.ivf_above, "nprobe": args.nprobe}
    flat = {**settings, "ivf_above": 1 << 62}
    ivf = {**settings, "ivf_above": 0}
    n = args.rows
    print(f"bench_dedup: {n:,} rows, {THREADS} threads, load {_load()}", file=sys.stderr)
    main_answer, main_wall, main_rss, main_result = _search(work, vectors, n, "default", **settings)
    lines = [
        f"## neighbours() at {n:,} rows ({os.cpu_count()} CPUs, {THREADS} threads, "
        f"threshold {args.threshold}, ivf_above {args.ivf_above:,}, nprobe {args.nprobe})",
        "",
        "| path | index | nprobe | neighbours() s | process s | peak RSS GiB | recall "
        "| vs default: same root | same repeat_count | max diff min_distance |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        _row("neighbours() (default)", args.nprobe, main_answer, main_wall, main_rss)
        + f" {recall(main_result, _planted(planted, n)):.4f} | 1 | 1 | 0 |",
    ]
    proposed_phases = []
    for nprobe in [int(s) for s in args.proposed_nprobe.split(",") if s]:
        over = {**settings, "nprobe": nprobe}
        name = f"proposed-{nprobe}"
        answer, wall, rss, result = _search(work, vectors, n, name, "proposed", **over)
        same_root, same_repeat, diff = agreement(main_result, result)
        lines.append(
            _row("proposed: one k-NN scan", nprobe, answer, wall, rss)
            + f" {recall(result, _planted(planted, n)):.4f} | {same_root:.4f} | "
            f"{same_repeat:.4f} | {diff:.2g} |"
        )
        proposed_phases.append((nprobe, answer["phases"]))
    if not args.no_profile:
        answer, _, _ = run_child(
            "profile", rows=n, vectors=vectors, result=work / "p.npy", **settings
        )
        title = f"neighbours() (a copy with timers), {answer['unions']:,} unions"
        lines += ["", *_phases(title, answer)]
    for nprobe, phases in proposed_phases:
        lines += ["", *_phases(f"proposed, nprobe {nprobe}", {"phases": phases})]
    print("\n".join(lines))
    print()
    sample = args.sample
    sample_lines = [
        f"## IVF against exact flat search on the first {sample:,} rows",
        "",
        "| index | nprobe | seconds | peak RSS GiB | recall | same root | same repeat_count |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    flat_answer, _, flat_rss, flat_result = _search(work, vectors, sample, f"flat-{sample}", **flat)
    sample_lines.append(
        f"| flat | - | {flat_answer['seconds']:.1f} | {flat_rss:.2f} | "
        f"{recall(flat_result, _planted(planted, sample)):.4f} | 1 | 1 |"
    )
    for nprobe in sorted({args.nprobe, *nprobes}):
        over = {**ivf, "nprobe": nprobe}
        answer, _, rss, result = _search(work, vectors, sample, f"ivf-{sample}-{nprobe}", **over)
        same_root, same_repeat, _ = agreement(flat_result, result)
        sample_lines.append(
            f"| ivf | {nprobe} | {answer['seconds']:.1f} | {rss:.2f} | "
            f"{recall(result, _planted(planted, sample)):.4f} | {same_root:.4f} | "
            f"{same_repeat:.4f} |"
        )
    print("\n".join(sample_lines))
    print()
    if sweep:
        sweep_lines = [
            "## flat against IVF by size (how `ivf_above` is chosen)",
            "",
            "| rows | flat s | ivf s (nprobe " + f"{args.nprobe}) | ivf recall | ivf same root |",
            "|---:|---:|---:|---:|---:|",
        ]
        measured: tuple[int, float] | None = None
        for rows in sweep:
            answer, _, _, result = _search(work, vectors, rows, f"ivf-{rows}", **ivf)
            ivf_recall = recall(result, _planted(planted, rows))
            if rows <= args.flat_max or measured is None:
                flat_answer, _, _, flat_result = _search(
                    work, vectors, rows, f"flat-{rows}", **flat
                )
                measured = rows, flat_answer["seconds"]
                flat_s = f"{measured[1]:.1f}"
                same_root = f"{agreement(flat_result, result)[0]:.4f}"
            else:  # flat search is quadratic in the rows
                flat_s = f"~{measured[1] * (rows / measured[0]) ** 2:.0f} (est.)"
                same_root = "-"
            sweep_lines.append(
                f"| {rows:,} | {flat_s} | {answer['seconds']:.1f} | {ivf_recall:.4f} | "
                f"{same_root} |"
            )
        print("\n".join(sweep_lines))
        print()
    if args.embed_rows:
        answer, wall, rss = run_child("embed", rows=args.embed_rows, batch=args.batch)
        rate = args.embed_rows / answer["seconds"]
        print(f"## Embedding: packaged all-MiniLM-L6-v2, {THREADS} threads, batch {args.batch}")
        print()
        print("| texts | load s | embed s | rows/s | peak RSS GiB | 1M rows would take |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(
            f"| {args.embed_rows:,} | {answer['load_seconds']:.1f} | {answer['seconds']:.1f} | "
            f"{rate:.0f} | {rss:.2f} | {1_000_000 / rate / 3600:.1f} h |"
        )
        print()
    print(f"load average at the end: {_load()}")


def _row(name: str, nprobe: int, answer: dict[str, Any], wall: float, rss: float) -> str:
    nprobe_s = str(nprobe) if answer["index"] == "ivf" else "-"
    return (
        f"| {name} | {answer['index']} | {nprobe_s} | {answer['seconds']:.1f} | {wall:.1f} | "
        f"{rss:.2f} |"
    )


def _phases(title: str, answer: dict[str, Any]) -> list[str]:
    phases = answer["phases"]
    total = sum(phases.values())
    lines = [f"| phase: {title} | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.1f} | {v / total:.0%} |" for k, v in phases.items()]
    return [*lines, f"| total | {total:.1f} | |"]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
