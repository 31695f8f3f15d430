"""Whole-process speed: `magpie-hub generate` from the shell against the best plain
llama-cpp-python loop, on the embedded SmolLM2-135M-Instruct GGUF.

Both get the same prompts, seeds and token limits; every run is a fresh process timed from
outside (imports, model load and start-up included). Runs are paired (the loop, then
magpie-hub, the order swapped each repeat) and medians are printed. The yardstick is the
faster of the loop on one thread and on every core. Run it from the repository root:

    .venv/bin/python benchmarks/bench_generate.py --rows 12 --rows 200
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
CONFIG = """
recipe = "magpie"
num_rows = {rows}
batch_size = {batch}
[engine]
model = "embedded:smollm2"
{extra}
[instruction]
max_new_tokens = {itok}
[response]
max_new_tokens = {rtok}
"""


def raw_loop(rows: int, itok: int, rtok: int, threads: int) -> int:
    """The prompts magpie-hub sends, one after another through one llama_cpp.Llama."""
    from llama_cpp import Llama

    from magpie_hub.engines.models import inspect_gguf, resolve_path
    from magpie_hub.prompts.templates import derive
    from magpie_hub.steps import check_instruction, row_seed

    path, model_id = resolve_path("embedded:smollm2")
    info = inspect_gguf(path, model_id, None)
    assert info.chat_template is not None
    fmt = derive(info.chat_template)
    stop = list(fmt.stop)
    llm = Llama(
        model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    written = 0
    for i in range(rows):
        out = llm.create_completion(
            fmt.pre_query, max_tokens=itok, temperature=1.0, top_p=1.0, stop=stop,
            seed=row_seed(42, i, "i1"),
        )["choices"][0]  # fmt: skip
        text, _ = check_instruction(out["text"], out["finish_reason"])
        if text is None:
            continue
        prompt = fmt.response_prompt([{"role": "user", "content": text}])
        llm.create_completion(
            prompt, max_tokens=rtok, temperature=0.0, top_p=1.0, stop=stop,
            seed=row_seed(42, i, "r1"),
        )  # fmt: skip
        written += 1
    return written


def timed(cmd: list[str], first_request: Path | None = None) -> tuple[float, float | None]:
    """Wall seconds of a whole process, and when its first prompt reached the engine."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = None
    while proc.poll() is None:
        if first is None and first_request is not None and first_request.exists():
            first = time.perf_counter() - start
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return seconds, first


def magpie_hub_run(
    work: Path, rows: int, itok: int, rtok: int, batch: int, extra: str
) -> tuple[float, float]:
    config = work / "c.toml"
    config.write_text(CONFIG.format(rows=rows, batch=batch, itok=itok, rtok=rtok, extra=extra))
    log = work / "prompts.jsonl"
    log.unlink(missing_ok=True)
    out = work / f"build-{time.monotonic_ns()}"
    os.environ["MAGPIE_HUB_LOG_PROMPTS"] = str(log)
    cmd = [str(ROOT / ".venv/bin/magpie-hub"), "generate", str(config), "--out", str(out), "-q"]
    seconds, first = timed(cmd, log)
    del os.environ["MAGPIE_HUB_LOG_PROMPTS"]
    return seconds, first or seconds


def loop_run(rows: int, itok: int, rtok: int, threads: int) -> float:
    cmd = [sys.executable, __file__, "--one-loop", str(threads), "--rows", str(rows)]
    cmd += ["--instruction-tokens", str(itok), "--response-tokens", str(rtok)]
    return timed(cmd)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--instruction-tokens", type=int, default=64)
    parser.add_argument("--response-tokens", type=int, default=128)
    parser.add_argument("--set", default="", help="extra TOML for the config, e.g. [execution]")
    parser.add_argument("--loop-threads", default="1,all", help="loops to run: 1, all or both")
    parser.add_argument("--one-loop", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    itok, rtok = args.instruction_tokens, args.response_tokens
    if args.one_loop:
        raw_loop(args.rows[0], itok, rtok, args.one_loop)
        return
    cores = len(os.sched_getaffinity(0))
    # as a pip install leaves it (an editable install under PYTHONDONTWRITEBYTECODE has no
    # bytecode, and every run would compile magpie-hub's modules first)
    compileall.compile_dir(ROOT / "magpie_hub", quiet=1)
    compileall.compile_dir(ROOT / "plugins", quiet=1)
    setting = f"batch {args.batch_size}; {args.set!r}"
    print(f"{cores} cores; max tokens {itok} (instruction) / {rtok} (response); {setting}; "
          f"medians of {args.repeats} paired runs")  # fmt: skip
    header = f"{'rows':>5} {'loop 1 thr':>10} {f'loop {cores} thr':>10} {'magpie-hub':>10}"
    print(f"{header} {'1st request':>11} {'vs best loop':>12}")
    for rows in args.rows or [12]:
        loops: dict[int, list[float]] = {
            (cores if t == "all" else int(t)): [] for t in args.loop_threads.split(",")
        }
        ours: list[float] = []
        firsts: list[float] = []
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                pair = ["loop", "ours"] if repeat % 2 == 0 else ["ours", "loop"]
                for which in pair:
                    if which == "loop":
                        for threads in loops:
                            loops[threads].append(loop_run(rows, itok, rtok, threads))
                    else:
                        seconds, first = magpie_hub_run(
                            Path(tmp),
                            rows,
                            itok,
                            rtok,
                            args.batch_size,
                            args.set.replace("\\n", "\n"),
                        )
                        ours.append(seconds)
                        firsts.append(first)
        med = {t: statistics.median(v) for t, v in loops.items()}
        best, mine = min(med.values()), statistics.median(ours)
        loop_cells = " ".join(f"{med[t]:9.1f}s" if t in med else f"{'-':>10}" for t in (1, cores))
        print(
            f"{rows:5d} {loop_cells} {mine:9.1f}s "
            f"{statistics.median(firsts):10.2f}s {best / mine:11.2f}x"
        )
        print(json.dumps({"rows": rows, "loop": loops, "magpie_hub": ours, "first": firsts}))


if __name__ == "__main__":
    main()
