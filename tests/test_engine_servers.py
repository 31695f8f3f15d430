"""Engine `openai` over several servers: spread, failover, and refusals before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import free_port
from llama_servers import embedded_gguf, start_llama_server, stop

from magpie_hub.engines.servers import ENGINE_EVENTS_ENV, ServerPool, summarize_events
from magpie_hub.errors import EngineError

CONFIG = """
recipe = "magpie"
num_rows = {rows}
batch_size = 4
[engine]
name = "openai"
model = "smollm2"
base_url = {urls}
tokenizer = "{tokenizer}"
request_extra = {{repeat_penalty = 1.0}}
[instruction]
max_new_tokens = 24
[response]
max_new_tokens = 24
"""


class Answers(BaseHTTPRequestHandler):
    """A completions server answering with the status its class sets."""

    status = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen += 1
        body = json.dumps({"choices": [{"text": "ok", "finish_reason": "stop"}]}).encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(status: int) -> tuple[HTTPServer, str]:
    handler = type(f"Answers{status}", (Answers,), {"status": status, "seen": 0})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/v1"


@pytest.fixture
def events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv(ENGINE_EVENTS_ENV, str(path))
    return path


def test_requests_move_off_a_failing_or_dead_server(events: Path) -> None:
    good, good_url = serve(200)
    bad, bad_url = serve(503)
    dead_url = f"http://127.0.0.1:{free_port()}/v1"
    pool = ServerPool([bad_url, dead_url, good_url], cooldown=60)
    pool.open()
    try:
        answers = [pool.post("/completions", {"prompt": str(i)}) for i in range(6)]
    finally:
        pool.close()
        bad.shutdown()
        good.shutdown()
    assert [a.status_code for a in answers] == [200] * 6
    assert good.RequestHandlerClass.seen == 6  # type: ignore[attr-defined]
    assert bad.RequestHandlerClass.seen == 1  # type: ignore[attr-defined]  # then it rested
    summary = summarize_events(events)
    assert summary["server_failures"] == {bad_url: 1, dead_url: 1}
    assert summary["requests_moved"] == 1


def test_a_request_fails_only_when_every_server_keeps_failing(events: Path) -> None:
    bad, bad_url = serve(500)
    pool = ServerPool([bad_url, f"http://127.0.0.1:{free_port()}/v1"], rounds=2, cooldown=0.05)
    pool.open()
    try:
        with pytest.raises(EngineError, match=r"no server of .* answered /completions"):
            pool.post("/completions", {"prompt": "x"})
    finally:
        pool.close()
        bad.shutdown()
    assert bad.RequestHandlerClass.seen == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["dead", "chat-only"])
def test_a_bad_server_in_the_list_is_refused_before_any_work(cli, tmp_path: Path, kind) -> None:
    good, good_url = serve(200)
    other, other_url = (
        serve(404) if kind == "chat-only" else (None, f"http://127.0.0.1:{free_port()}/v1")
    )
    config = tmp_path / "c.toml"
    config.write_text(
        CONFIG.format(rows=2, urls=json.dumps([good_url, other_url]), tokenizer=embedded_gguf())
    )
    out = tmp_path / "build"
    try:
        result = cli("generate", str(config), "--out", str(out))
    finally:
        good.shutdown()
        if other:
            other.shutdown()
    assert result.exit_code == 1
    assert other_url in result.stderr and "Hint:" in result.stderr
    assert ("cannot reach" if kind == "dead" else "chat-only API") in result.stderr
    assert not out.exists()


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    servers = [start_llama_server(tmp_path / f"server{n}.log", threads=1) for n in range(2)]
    try:
        yield servers
    finally:
        for proc, _ in servers:
            stop(proc)


@pytest.mark.slow
@pytest.mark.embedded
def test_a_server_killed_mid_run_loses_no_row(two_servers, tmp_path: Path) -> None:
    (first, first_url), (_, second_url) = two_servers
    rows = 24
    config = tmp_path / "c.toml"
    config.write_text(
        CONFIG.format(
            rows=rows, urls=json.dumps([first_url, second_url]), tokenizer=embedded_gguf()
        )
    )
    out = tmp_path / "build"
    cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config), "--out", str(out)]
    run = subprocess.Popen([*cmd, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((out / ".magpie" / "chunks").glob("*.json")):
        assert run.poll() is None, run.stderr.read() if run.stderr else ""
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)  # mid-run: later batches still need a server
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    assert summary["status"] == "complete"
    assert summary["generated"] + summary["dropped"] == rows
    assert first_url in summary["engine_events"]["server_failures"]
    assert summary["engine_events"]["requests_moved"] >= 1
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet")
    uuids = table.column("uuid").to_pylist()
    assert len(uuids) == len(set(uuids)) == summary["generated"]
    chunk_indices = []
    for marker in (out / ".magpie" / "chunks").glob("*.json"):
        chunk_indices += json.loads(marker.read_text())["written"]
    assert sorted(chunk_indices) == sorted(set(chunk_indices))  # none written twice
