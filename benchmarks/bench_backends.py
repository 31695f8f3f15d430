"""Rows per second of one config on each way of running it, side by side: the local
backend, a local 2-worker Ray cluster (scripts/ray-cluster.sh), and the `openai` engine
with one and with two llama.cpp servers (each server gets cores / servers threads).

Every run is `magpie-hub generate` as a whole process from the shell; clusters and servers
are started before the clock starts. On 2 cores expect no speed-up: the figures show
the overhead of each way (target: within 10 % of local). Given two sizes (`--rows 24
--rows 120`), each way's time is also split into a fixed cost and a rate per row (the
line through the two medians). Run from the repository root:

    .venv/bin/python benchmarks/bench_backends.py --rows 24 --repeats 3
    .venv/bin/python benchmarks/bench_backends.py --rows 24 --rows 120 --ways local,ray
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "tests"))

CONFIG = """
recipe = "magpie"
num_rows = {rows}
batch_size = 4
[engine]
{engine}
[instruction]
max_new_tokens = {itok}
[response]
max_new_tokens = {rtok}
"""


def run(config: Path, out: Path, *extra: str) -> float:
    cmd = [str(ROOT / ".venv/bin/magpie-hub"), "generate", str(config), "--out", str(out), "-q"]
    start = time.perf_counter()
    done = subprocess.run([*cmd, *extra], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(extra) or 'local'} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def start_servers(n: int, work: Path) -> list[tuple[subprocess.Popen[bytes], str]]:
    from llama_servers import start_llama_server

    threads = max(1, len(os.sched_getaffinity(0)) // n)
    return [start_llama_server(work / f"server-{n}-{i}.log", threads=threads) for i in range(n)]


WAYS = {
    "local": "local backend",
    "ray": "Ray, 2 local workers",
    "openai-1": "openai, 1 llama.cpp server",
    "openai-2": "openai, 2 llama.cpp servers",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--ways", default=",".join(WAYS), help="of " + ", ".join(WAYS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instruction-tokens", type=int, default=48)
    parser.add_argument("--response-tokens", type=int, default=96)
    args = parser.parse_args()
    from llama_servers import embedded_gguf, stop

    sizes, chosen = args.rows or [24], args.ways.split(",")
    if unknown := set(chosen) - set(WAYS):
        raise SystemExit(f"--ways: unknown {sorted(unknown)}; choose from {', '.join(WAYS)}")
    gguf = embedded_gguf()
    times: dict[int, dict[str, list[float]]] = {rows: {} for rows in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "MAGPIE_HUB_RAY_HOME": str(work / "ray")}
        script = str(ROOT / "scripts/ray-cluster.sh")
        address = ""
        if "ray" in chosen:
            started = subprocess.run(
                ["bash", script, "start"], env=env, capture_output=True, text=True, check=True
            )
            address = started.stdout.strip().split("=", 1)[1]
        servers = {n: start_servers(n, work) for n in (1, 2) if f"openai-{n}" in chosen}
        engines = {"local": 'model = "embedded:smollm2"'}
        for n, procs in servers.items():
            urls = json.dumps([url for _, url in procs])
            engines[f"openai-{n}"] = (
                f'name = "openai"\nmodel = "smollm2"\nbase_url = {urls}\n'
                f'tokenizer = "{gguf}"\nrequest_extra = {{repeat_penalty = 1.0}}'
            )
        try:
            for rows in sizes:
                tokens = {
                    "rows": rows,
                    "itok": args.instruction_tokens,
                    "rtok": args.response_tokens,
                }
                for repeat in range(args.repeats):
                    for way in chosen:
                        config = work / f"{way}-{rows}.toml"
                        config.write_text(
                            CONFIG.format(engine=engines.get(way, engines["local"]), **tokens)
                        )
                        extra = ("--ray", address) if way == "ray" else ()
                        out = work / f"{way}-{rows}-{repeat}"
                        times[rows].setdefault(WAYS[way], []).append(run(config, out, *extra))
        finally:
            for procs in servers.values():
                for proc, _ in procs:
                    stop(proc)
            if address:
                subprocess.run(["bash", script, "stop"], env=env, capture_output=True)
    report(times, args.repeats)


def report(times: dict[int, dict[str, list[float]]], repeats: int) -> None:
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, medians of {repeats} (whole processes)")
    print(f"{'rows':>5} {'way':30} {'seconds':>8} {'rows/s':>7} {'vs local':>9}")
    medians = {
        rows: {w: statistics.median(v) for w, v in ways.items()} for rows, ways in times.items()
    }
    for rows, ways in medians.items():
        base = ways.get(WAYS["local"])
        for name, seconds in ways.items():
            versus = f"{base / seconds:8.2f}x" if base else f"{'-':>9}"
            print(f"{rows:5d} {name:30} {seconds:8.1f} {rows / seconds:7.2f} {versus}")
    if len(medians) >= 2:
        small, large = min(medians), max(medians)
        print(f"\nfixed cost and rate per row (the line through {small} and {large} rows)")
        print(f"{'way':30} {'fixed s':>8} {'s/row':>7} {'rate vs local':>14}")
        rates = {}
        for name in medians[large]:
            if name in medians[small]:
                rates[name] = (medians[large][name] - medians[small][name]) / (large - small)
        local_rate = rates.get(WAYS["local"])
        for name, rate in rates.items():
            fixed = medians[small][name] - rate * small
            versus = f"{local_rate / rate:13.2f}x" if local_rate else f"{'-':>14}"
            print(f"{name:30} {fixed:8.1f} {rate:7.3f} {versus}")
    print(json.dumps({str(rows): ways for rows, ways in times.items()}))


if __name__ == "__main__":
    main()
