"""A Hugging Face Hub protocol emulator for tests: real git repositories behind HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from .app import Fault, HubEmulator

__all__ = ["Fault", "HubEmulator", "serve"]


@contextmanager
def serve(emulator: HubEmulator, port: int) -> Iterator[str]:
    """Run the emulator on loopback in a thread; yields its base URL."""
    emulator.base_url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(emulator, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{emulator.base_url}/api/whoami-v2", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield emulator.base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def make_emulator(root: Path) -> HubEmulator:
    """Two users: `alice` (token hf_alice_test, member of org `magpie-org`) and `bob`."""
    return HubEmulator(
        root,
        users={"hf_alice_test": "alice", "hf_bob_test": "bob"},
        orgs={"alice": ["magpie-org"]},
    )
