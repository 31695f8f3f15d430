"""Rows per second of one config on each way of running it, side by side: the local
backend, a local 2-worker Ray cluster (scripts/ray-cluster.sh), and the `openai` engine
with one and with two llama.cpp servers (each server gets cores / servers threads).

Every run is `magpie-hub generate` as a whole process from the shell; clusters and servers
are started before the clock starts. On 2 cores expect no speed-up: the figures show
the overhead of each way (target: within 10 % of local). Run from the repository root:

    .venv/bin/python benchmarks/bench_backends.py --rows 24 --repeats 3
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instruction-tokens", type=int, default=48)
    parser.add_argument("--response-tokens", type=int, default=96)
    args = parser.parse_args()
    from llama_servers import embedded_gguf, stop

    tokens = {"rows": args.rows, "itok": args.instruction_tokens, "rtok": args.response_tokens}
    gguf = embedded_gguf()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        local = work / "local.toml"
        local.write_text(CONFIG.format(engine='model = "embedded:smollm2"', **tokens))
        env = {**os.environ, "MAGPIE_HUB_RAY_HOME": str(work / "ray")}
        script = str(ROOT / "scripts/ray-cluster.sh")
        started = subprocess.run(
            ["bash", script, "start"], env=env, capture_output=True, text=True, check=True
        )
        address = started.stdout.strip().split("=", 1)[1]
        servers = {n: start_servers(n, work) for n in (1, 2)}
        remote = {}
        for n, procs in servers.items():
            urls = json.dumps([url for _, url in procs])
            engine = (
                f'name = "openai"\nmodel = "smollm2"\nbase_url = {urls}\n'
                f'tokenizer = "{gguf}"\nrequest_extra = {{repeat_penalty = 1.0}}'
            )
            remote[n] = work / f"openai-{n}.toml"
            remote[n].write_text(CONFIG.format(engine=engine, **tokens))
        ways = {
            "local backend": lambda out: run(local, out),
            "Ray, 2 local workers": lambda out: run(local, out, "--ray", address),
            "openai, 1 llama.cpp server": lambda out: run(remote[1], out),
            "openai, 2 llama.cpp servers": lambda out: run(remote[2], out),
        }
        try:
            for repeat in range(args.repeats):
                for name, way in ways.items():
                    times.setdefault(name, []).append(way(work / f"{name}-{repeat}"))
        finally:
            for procs in servers.values():
                for proc, _ in procs:
                    stop(proc)
            subprocess.run(["bash", script, "stop"], env=env, capture_output=True)
    cores = len(os.sched_getaffinity(0))
    print(f"{args.rows} rows, {cores} cores, medians of {args.repeats} (whole processes)")
    base = statistics.median(times["local backend"])
    print(f"{'way':30} {'seconds':>8} {'rows/s':>7} {'vs local':>9}")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"{name:30} {seconds:8.1f} {args.rows / seconds:7.2f} {base / seconds:8.2f}x")
    print(json.dumps(times))


if __name__ == "__main__":
    main()
