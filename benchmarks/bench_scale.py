"""A million rows through the stages after generation, each a whole process from the shell:
consolidate (`magpie-hub generate` on a build whose every batch is committed: shards,
views, manifest), card (the release tree and its statistics), `magpie-hub publish
--local`, and `magpie-hub curate` (language tags stored for all but `--untagged` of the
rows, which lingua tags through the pipeline; then the join, a filter with top_n and a
shuffle, and the `filtered` view). Prints wall time and peak RSS of each beside the
targets (peak RSS at most 1 GiB in every stage, card statistics within 30 s).

The build is synthetic (`benchmarks/synthetic_build.py`: recipe `magpie`, chunks written
by the real sink, no model). Run it from the repository root:

    .venv/bin/python benchmarks/bench_scale.py              # 1,000,000 rows
    .venv/bin/python benchmarks/bench_scale.py --rows 20000 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic_build import write_build, write_tags

GIB = 1024**3
RSS_TARGET = GIB
STATS_TARGET_S = 30.0
CARD = """
import json, sys, time
from pathlib import Path
import magpie_hub.release.tree as tree
spent = [0.0]
stats = tree.config_stats
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return stats(*args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - start
tree.config_stats = timed
tree.stage_release(Path(sys.argv[1]), Path(sys.argv[2]))
print(json.dumps({"stats_s": spent[0]}))
"""


def run_stage(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) and stdout of one whole process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the maximum so far
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode()[-3000:]
            sys.exit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{tail}")
        return wall, usage.ru_maxrss * 1024, out.read().decode()


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per committed chunk")
    parser.add_argument(
        "--untagged", type=float, default=0.02, help="share of rows curate tags with lingua"
    )
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        t0 = time.perf_counter()
        config, build = write_build(work, args.rows, batch_size=args.batch_size)
        written_s = time.perf_counter() - t0
        chunks = du(build / ".magpie" / "chunks")
        py = [sys.executable, "-m", "magpie_hub"]
        stages = {
            "consolidate": [*py, "generate", str(config), "--out", str(build), "-q"],
            "card": [sys.executable, "-c", CARD, str(build), str(work / "card")],
            "publish --local": [
                *py, "publish", str(config), "--repo", "bench/scale", "--tag", "v1",
                "--out", str(build), "--local", str(work / "tree"), "--json",
            ],
        }  # fmt: skip
        results = {name: run_stage(cmd, work) for name, cmd in stages.items()}
        curate = write_tags(config, build, untagged=args.untagged)
        results["curate"] = run_stage([*py, "curate", str(curate), "--out", str(build), "-q"], work)
        stats_s = json.loads(results["card"][2].strip().splitlines()[-1])["stats_s"]
        manifest = json.loads((build / "manifest.json").read_text())
        data = du(build / "data")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    kept = manifest["counts"]["generated"]
    print(f"\n{args.rows} rows ({kept} kept), batches of {args.batch_size}")
    print(f"synthetic build written in {written_s:.1f} s; chunks {chunks / 2**20:.0f} MiB,")
    print(f"data/ {data / 2**20:.0f} MiB (shards and views)")
    curated = manifest["curate"]
    funnel = " -> ".join(str(step["rows_after"]) for step in manifest["filter"]["funnel"])
    print(f"curate tagged {curated['computed_this_run']} rows; filter {funnel}\n")
    print(f"{'stage':<16} {'wall s':>8} {'peak RSS MiB':>13} {'target':>14} {'ok':>4}")
    for name, (wall, rss, _) in results.items():
        ok = "yes" if rss <= RSS_TARGET else "NO"
        print(f"{name:<16} {wall:8.1f} {rss / 2**20:13.0f} {'<= 1024 MiB':>14} {ok:>4}")
    ok = "yes" if stats_s <= STATS_TARGET_S else "NO"
    print(f"{'card statistics':<16} {stats_s:8.1f} {'':>13} {'<= 30 s':>14} {ok:>4}")
    if args.keep:
        print(f"\nkept in {work}")


if __name__ == "__main__":
    main()
