"""Rows per second: `magpie-hub generate` against the same engine driven directly, and
against a plain distilabel `MagpieGenerator` pipeline with its defaults.

All three use llama.cpp on the embedded SmolLM2-135M-Instruct GGUF with the same token
limits. Run it from the repository root (it needs `make test`'s environment):

    .venv/bin/python benchmarks/bench_generate.py --rows 16

Each row is one instruction plus one response. magpie-hub and the raw engine get the
same prompts and seeds; MagpieGenerator builds its own prompts (its defaults). Each path
runs in a fresh subprocess: distilabel forks its workers, and a process that has already
run llama.cpp must not fork them (see README, Known limitations).
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


def bench_magpie_hub(rows: int, itok: int, rtok: int, work: Path) -> tuple[float, int]:
    from magpie_hub.config import validate
    from magpie_hub.generate.run import generate
    from magpie_hub.plugins import get_registry

    recipe = get_registry().recipe("magpie")
    cfg = validate(
        {
            "num_rows": rows,
            "batch_size": 4,
            "instruction": {"max_new_tokens": itok},
            "response": {"max_new_tokens": rtok},
        },
        recipe.config_model,
    )
    start = time.perf_counter()
    result = generate(cfg, work / "magpie-hub")
    return time.perf_counter() - start, result.manifest["counts"]["generated"]


def bench_raw_engine(rows: int, itok: int, rtok: int) -> tuple[float, int]:
    """The same prompts, seeds and limits, straight through llama_cpp.Llama, one process."""
    from llama_cpp import Llama

    from magpie_hub.engines.models import inspect_gguf, resolve_path
    from magpie_hub.prompts.templates import derive
    from magpie_hub.steps import check_instruction, row_seed

    path, model_id = resolve_path("embedded:smollm2")
    info = inspect_gguf(path, model_id, None)
    assert info.chat_template is not None
    fmt = derive(info.chat_template)
    stop = list(fmt.stop)
    start = time.perf_counter()
    llm = Llama(model_path=str(path), n_ctx=2048, verbose=False)
    written = 0
    for i in range(rows):
        out = llm.create_completion(
            fmt.pre_query,
            max_tokens=itok,
            temperature=1.0,
            top_p=1.0,
            stop=stop,
            seed=row_seed(42, i, "i1"),
        )["choices"][0]
        text, _ = check_instruction(out["text"], out["finish_reason"])
        if text is None:
            continue
        prompt = fmt.response_prompt([{"role": "user", "content": text}])
        llm.create_completion(
            prompt,
            max_tokens=rtok,
            temperature=0.0,
            top_p=1.0,
            stop=stop,
            seed=row_seed(42, i, "r1"),
        )
        written += 1
    return time.perf_counter() - start, written


def bench_distilabel_magpie(rows: int, itok: int, rtok: int, work: Path) -> tuple[float, int]:
    """distilabel's MagpieGenerator on LlamaCppLLM with its defaults (it needs an HF tokenizer
    folder for the chat template: written here from the GGUF)."""
    from distilabel.models.llms import LlamaCppLLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps.tasks import MagpieGenerator
    from transformers import AutoTokenizer

    from magpie_hub.engines.models import resolve_path

    path, _ = resolve_path("embedded:smollm2")
    tokenizer_dir = work / "smollm2-tokenizer"
    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(
        tokenizer_dir
    )
    with Pipeline(name="bench-distilabel-magpie", cache_dir=work / "distilabel") as pipeline:
        MagpieGenerator(
            llm=LlamaCppLLM(
                model_path=str(path),
                tokenizer_id=str(tokenizer_dir),
                magpie_pre_query_template="<|im_start|>user\n",
                n_ctx=2048,
                generation_kwargs={"max_new_tokens": max(itok, rtok)},
            ),
            num_rows=rows,
            batch_size=4,
        )
    start = time.perf_counter()
    distiset = pipeline.run(use_cache=False)
    elapsed = time.perf_counter() - start
    return elapsed, len(distiset["default"]["train"])


def _one(path: str, n: int, itok: int, rtok: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        if path == "raw":
            return bench_raw_engine(n, itok, rtok)
        if path == "magpie-hub":
            return bench_magpie_hub(n, itok, rtok, Path(tmp))
        return bench_distilabel_magpie(n, itok, rtok, Path(tmp))


def _in_subprocess(path: str, n: int, itok: int, rtok: int) -> tuple[float, int]:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        path,
        "--rows",
        str(n),
        "--instruction-tokens",
        str(itok),
        "--response-tokens",
        str(rtok),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    seconds, written = json.loads(out.strip().splitlines()[-1])
    return float(seconds), int(written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--instruction-tokens", type=int, default=64)
    parser.add_argument("--response-tokens", type=int, default=128)
    parser.add_argument("--skip-distilabel", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")
    n, itok, rtok = args.rows, args.instruction_tokens, args.response_tokens
    if args.one:
        print(json.dumps(_one(args.one, n, itok, rtok)))
        return
    paths = {"raw llama.cpp (same prompts)": "raw", "magpie-hub generate": "magpie-hub"}
    if not args.skip_distilabel:
        paths["distilabel MagpieGenerator (defaults)"] = "distilabel"
    results = {name: _in_subprocess(path, n, itok, rtok) for name, path in paths.items()}
    raw = n / results["raw llama.cpp (same prompts)"][0]
    print(f"{n} rows, max tokens {itok} (instruction) / {rtok} (response), {os.cpu_count()} CPUs")
    print(f"{'path':40} {'seconds':>8} {'rows':>5} {'rows/s':>7} {'vs raw':>7}")
    for name, (seconds, written) in results.items():
        rate = n / seconds
        print(f"{name:40} {seconds:8.1f} {written:5d} {rate:7.3f} {rate / raw:6.2f}x")


if __name__ == "__main__":
    main()
