"""Tagging rows per second: `magpie-hub curate` with one judge tagger (quality) on the
embedded model, against the same judge prompts sent straight to llama-cpp-python.

Both paths are timed as whole fresh processes, start-up included:

- `magpie-hub curate CONFIG --out BUILD` from the shell, on a fresh copy of a build of
  varied instructions (`[curate] taggers = ["quality"]`, `[curate.judge] name =
  "llamacpp", model = "embedded:smollm2"`), as a user meets it;
- the yardstick: a Python process that loads `llama_cpp.Llama(model_path, n_ctx=2048,
  n_threads=THREADS)` and calls `create_completion` on the same prompts (the judge's
  chat format around the quality task), greedy, with the same stop strings, the same
  `max_tokens` (curate's `judge_max_new_tokens`) and the same JSON-schema grammar.

Runs are paired and alternate (curate first, then the yardstick first); the table shows
medians. Run it from the repository root:

    .venv/bin/python benchmarks/bench_tagging.py --repeat 3

Target: curate at least 0.9x the yardstick's rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

INSTRUCTIONS = [
    "How do I sort a list of dictionaries by a key in Python?",
    "Write a short poem about the sea at night.",
    "What is the capital city of Australia?",
    "Explain photosynthesis to a ten-year-old child.",
    "Quelle est la meilleure façon d'apprendre le français rapidement ?",
    "List three healthy breakfast ideas.",
    "fix my code",
    "Can you summarise the causes of the First World War in five bullet points?",
    "What is the derivative of x^3 * sin(x)?",
    "I have 3 apples and eat one, then buy 5 more. How many apples do I have?",
    "Draft a polite email asking my landlord to repair the heating.",
    "Which is better for a beginner, a road bike or a hybrid bike, and why?",
    "Translate 'good morning, how are you?' into Spanish and German.",
    "Tell me a joke.",
    "What are the main differences between TCP and UDP?",
    "Plan a three-day itinerary for a first visit to Rome on a small budget.",
    "Why does ice float on water?",
    "Give me a SQL query that returns the ten most recent orders per customer.",
    "asdf qwer zxcv",
    "How can I stop procrastinating when studying for exams?",
    "Write a haiku about autumn leaves.",
    "Explain the difference between a virus and a bacterium.",
    "What should I consider when choosing a laptop for video editing?",
    "Prove that there are infinitely many prime numbers.",
]

CONFIG = """\
[curate]
taggers = ["quality"]
batch_size = {batch_size}
judge_max_new_tokens = {max_tokens}

[curate.judge]
name = "llamacpp"
model = "embedded:smollm2"
{threads}"""


# ---------------------------------------------------------------- yardstick child


def yardstick(job_path: Path) -> dict[str, Any]:
    """The judge prompts straight through llama-cpp-python (this process is timed whole)."""
    job = json.loads(job_path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    from llama_cpp import Llama, LlamaGrammar

    kwargs = {"n_threads": job["threads"]} if job["threads"] else {}
    llm = Llama(model_path=job["model"], n_ctx=2048, verbose=False, **kwargs)
    grammar = LlamaGrammar.from_json_schema(json.dumps(job["schema"]), verbose=False)
    loaded = time.perf_counter()
    answers = []
    for prompt in job["prompts"]:
        choice = llm.create_completion(
            prompt,
            max_tokens=job["max_tokens"],
            temperature=0.0,
            top_p=1.0,
            stop=job["stop"] or None,
            grammar=grammar,
        )["choices"][0]
        answers.append([choice["text"], choice.get("finish_reason")])
    done = time.perf_counter()
    return {"load_seconds": loaded - start, "seconds": done - loaded, "answers": answers}


# ---------------------------------------------------------------- parent


def prepare(work: Path, rows: int, args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(a pristine build, the curate config, the yardstick's job file)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from curate_helpers import make_build

    from magpie_hub.curate.config import load_curation
    from magpie_hub.curate.judge import QUALITY_TASK
    from magpie_hub.curate.run import plan_curate
    from magpie_hub.engines.models import resolve_path

    instructions = [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(rows)]
    instructions = [
        text if i < len(INSTRUCTIONS) else f"{text} (variant {i // len(INSTRUCTIONS)})"
        for i, text in enumerate(instructions)
    ]
    pristine = make_build(work / "pristine", instructions)
    config = work / "curate.toml"
    config.write_text(
        CONFIG.format(
            batch_size=args.batch_size,
            max_tokens=args.max_tokens,
            threads=f"threads = {args.threads}\n" if args.threads else "",
        ),
        encoding="utf-8",
    )
    cfg = load_curation(config)
    scratch = work / "scratch"
    shutil.copytree(pristine, scratch)
    fmt = plan_curate(scratch, cfg.curate, None).ctx.judge_format  # curate's own judge format
    assert fmt is not None
    shutil.rmtree(scratch)
    prompts = [
        fmt.response_prompt([{"role": "user", "content": QUALITY_TASK.render(text)}], None)
        for text in instructions
    ]
    path, _ = resolve_path("embedded:smollm2")
    job = work / "job.json"
    job.write_text(
        json.dumps(
            {
                "model": str(path),
                "threads": args.threads,
                "max_tokens": cfg.curate.judge_max_new_tokens,
                "stop": list(fmt.stop),
                "schema": QUALITY_TASK.schema,
                "prompts": prompts,
            }
        ),
        encoding="utf-8",
    )
    return pristine, config, job


def run_curate(pristine: Path, config: Path, work: Path, run: int) -> dict[str, Any]:
    build = work / f"build-{run}"
    shutil.copytree(pristine, build)
    cli = Path(sys.executable).parent / "magpie-hub"
    cmd = [str(cli), "curate", str(config), "--out", str(build), "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    summary = json.loads(proc.stdout)
    import pyarrow.parquet as pq

    from magpie_hub.build import BuildFolder

    table = pq.read_table(BuildFolder(build).shards(), columns=["uuid", "input_quality"])
    labels = dict(zip(table["uuid"].to_pylist(), table["input_quality"].to_pylist(), strict=True))
    return {
        "seconds": seconds,
        "own_seconds": summary["seconds"],
        "tagged": summary["taggers"]["quality"]["tagged"],
        "labels": [labels[u] for u in sorted(labels)],
    }


def run_yardstick(job: Path) -> dict[str, Any]:
    from magpie_hub.curate.judge import QUALITY_TASK

    cmd = [sys.executable, __file__, "--one", str(job)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    parsed = [QUALITY_TASK.parse(text, finish) for text, finish in answer["answers"]]
    return {
        "seconds": seconds,
        "own_seconds": answer["seconds"],
        "load_seconds": answer["load_seconds"],
        "tagged": sum(1 for p in parsed if p["_error"] is None),
        "labels": [p["input_quality"] for p in parsed],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=len(INSTRUCTIONS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="0: llama.cpp's default")
    parser.add_argument("--batch-size", type=int, default=16, help="[curate] batch_size")
    parser.add_argument("--max-tokens", type=int, default=256, help="judge_max_new_tokens")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(yardstick(Path(args.one))))
        return
    os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")
    n = args.rows
    curate: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="bench-tagging-") as tmp:
        work = Path(tmp)
        pristine, config, job = prepare(work, n, args)
        for run in range(args.repeat):
            order = ("curate", "raw") if run % 2 == 0 else ("raw", "curate")
            for path in order:
                if path == "curate":
                    curate.append(run_curate(pristine, config, work, run))
                else:
                    raw.append(run_yardstick(job))
                last = (curate if path == "curate" else raw)[-1]
                print(f"run {run + 1} {path}: {last['seconds']:.1f} s", file=sys.stderr)
    report(args, curate, raw, load_before)


def report(
    args: argparse.Namespace,
    curate: list[dict[str, Any]],
    raw: list[dict[str, Any]],
    load_before: str,
) -> None:
    n = args.rows
    med_curate = statistics.median(r["seconds"] for r in curate)
    med_raw = statistics.median(r["seconds"] for r in raw)
    pair_ratios = [r["seconds"] / c["seconds"] for c, r in zip(curate, raw, strict=True)]
    threads = args.threads or "llama.cpp default"
    # curate's labels are in uuid order (`row-0000`, ...): the order the prompts were built in
    same = sum(a == b for a, b in zip(curate[0]["labels"], raw[0]["labels"], strict=True))
    print(
        f"## Tagging: quality judge on embedded:smollm2, {n} rows, {args.repeat} paired runs, "
        f"threads {threads}, max_new_tokens {args.max_tokens}, {os.cpu_count()} CPUs"
    )
    print()
    print(
        "| path | median s (whole process) | rows/s | median s (inside) | tagged | "
        "runs s | vs yardstick |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    for name, results, med in (
        ("`magpie-hub curate` (CLI, start-up included)", curate, med_curate),
        ("llama-cpp-python direct (fresh process)", raw, med_raw),
    ):
        inside = statistics.median(r["own_seconds"] for r in results)
        runs = ", ".join(f"{r['seconds']:.1f}" for r in results)
        print(
            f"| {name} | {med:.1f} | {n / med:.3f} | {inside:.1f} | {results[0]['tagged']}/{n} | "
            f"{runs} | {med_raw / med:.2f}x |"
        )
    print()
    print(
        f"ratio of medians (curate rows/s / yardstick rows/s): {med_raw / med_curate:.2f}; "
        f"median of paired ratios: {statistics.median(pair_ratios):.2f} (target >= 0.9)"
    )
    print(
        "inside: curate's own `seconds` (plan + pipeline + write); the yardstick's generation "
        f"after loading (load median {statistics.median(r['load_seconds'] for r in raw):.1f} s)"
    )
    print(f"same input_quality label as the yardstick: {same}/{n} rows (first run)")
    print(f"load average: before {load_before}, after {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
