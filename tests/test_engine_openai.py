"""Engine `openai` against a real OpenAI-compatible server on loopback (llama.cpp's server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import free_port
from llama_servers import start_llama_server, stop

pytestmark = [pytest.mark.slow, pytest.mark.embedded]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` serving the embedded SmolLM2 GGUF on loopback."""
    proc, base = start_llama_server(tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield base
    finally:
        stop(proc)


CONFIG = """
recipe = "magpie"
num_rows = 2
batch_size = 2
[engine]
name = "{engine}"
model = "{model}"
{extra}
[instruction]
temperature = 0.0
max_new_tokens = 48
[response]
max_new_tokens = 24
"""
# Greedy text matches only while both engines compute the same floats: llama.cpp's server
# reuses the KV cache of the previous request's shared prefix, so after some 40 tokens a
# response can drift by rounding. Short outputs keep the comparison about the prompts.


def rows(build: Path) -> list[dict]:
    table = pq.read_table(build / "data" / "train-00000-of-00001.parquet")
    return table.select(["instruction", "response", "pre_query_template"]).to_pylist()


def prompt_log(path: Path) -> list[dict]:
    return sorted(
        (json.loads(line) for line in path.read_text().splitlines()),
        key=lambda r: (r["seed"], r["prompt"]),
    )


def test_same_prompts_same_text_as_the_embedded_engine(
    cli, llama_server, embedded_model, tiny_model, tmp_path, monkeypatch
) -> None:
    local = tmp_path / "local.toml"
    local.write_text(CONFIG.format(engine="llamacpp", model="embedded:smollm2", extra=""))
    remote = tmp_path / "remote.toml"
    remote.write_text(
        CONFIG.format(
            engine="openai",
            model="smollm2",
            # llama.cpp's server defaults repeat_penalty to 1.1; its Python API to 1.0
            extra=f'base_url = "{llama_server}"\ntokenizer = "{embedded_model}"\n'
            "request_extra = {repeat_penalty = 1.0}",
        )
    )
    # The tiny transformers model with SmolLM2's chat template: its rows differ, but the
    # instruction prompts (which depend on no earlier output) must not.
    from magpie_hub.engines.models import inspect_gguf

    smollm2 = inspect_gguf(embedded_model, "smollm2", None).chat_template
    assert smollm2 is not None
    folder = tmp_path / "tiny.toml"
    folder.write_text(
        CONFIG.format(
            engine="transformers",
            model=tiny_model,
            extra=f"chat_template = {json.dumps(smollm2.source)}",
        )
    )
    for name, config in (("local", local), ("remote", remote), ("tiny", folder)):
        monkeypatch.setenv("MAGPIE_HUB_LOG_PROMPTS", str(tmp_path / f"{name}.jsonl"))
        result = cli("generate", str(config), "--out", str(tmp_path / name), "--json")
        assert result.exit_code == 0, result.stderr
    local_rows, remote_rows = rows(tmp_path / "local"), rows(tmp_path / "remote")
    assert local_rows and local_rows == remote_rows
    # Every engine was sent the identical text, seed, stop strings and sampling.
    sent = {name: prompt_log(tmp_path / f"{name}.jsonl") for name in ("local", "remote", "tiny")}
    assert len(sent["local"]) == 4 and sent["local"] == sent["remote"]
    first_turn = [r for r in sent["local"] if r["max_new_tokens"] == 48]
    assert len(first_turn) == 2
    assert [r for r in sent["tiny"] if r["max_new_tokens"] == 48] == first_turn
    manifest = json.loads((tmp_path / "remote" / "manifest.json").read_text())
    assert manifest["model"]["engine"] == "openai"
    assert "api_key" not in manifest["config"]["engine"]


class ChatOnly(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        code = 200 if self.path.endswith("/chat/completions") else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_chat_only_endpoint_is_refused(cli, tmp_path) -> None:
    server = HTTPServer(("127.0.0.1", 0), ChatOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = tmp_path / "c.toml"
        config.write_text(
            CONFIG.format(
                engine="openai",
                model="m",
                extra=f'base_url = "http://127.0.0.1:{server.server_port}/v1"',
            )
        )
        result = cli("generate", str(config), "--out", str(tmp_path / "b"))
        assert result.exit_code == 1
        assert "chat-only API cannot run Magpie" in result.stderr
    finally:
        server.shutdown()


def test_unreachable_server_and_missing_base_url(cli, tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        CONFIG.format(
            engine="openai", model="m", extra=f'base_url = "http://127.0.0.1:{free_port()}/v1"'
        )
    )
    result = cli("generate", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1 and "cannot reach" in result.stderr
    config.write_text(CONFIG.format(engine="openai", model="m", extra=""))
    result = cli("generate", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1 and "engine.base_url" in result.stderr


def test_judge_tags_through_the_server_are_schema_forced(cli, llama_server, tmp_path) -> None:
    """Curation's judge on an OpenAI-compatible server: `json_mode = "grammar"` turns the
    schema into GBNF for llama-cpp-python's server, so every answer parses."""
    from curate_helpers import ROWS, make_build

    from magpie_hub.curate.labels import QUALITY

    build = make_build(tmp_path / "build", ROWS[3:6])
    config = tmp_path / "c.toml"
    config.write_text(
        '[curate]\ntaggers = ["quality"]\njudge_max_new_tokens = 160\n[curate.judge]\n'
        f'name = "openai"\nmodel = "smollm2"\nbase_url = "{llama_server}"\n'
        f'tokenizer = "{_embedded()}"\njson_mode = "grammar"\n'
    )
    result = cli("curate", str(config), "--out", str(build), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["taggers"]["quality"]["errors_by_reason"] == {}
    tagged = pq.read_table(build / "data" / "train-00000-of-00001.parquet").to_pylist()
    assert {r["input_quality"] for r in tagged} <= set(QUALITY)
    assert {r["quality_generator"] for r in tagged} == {"smollm2"}


def _embedded() -> Path:
    from magpie_hub.engines.models import resolve_path

    return resolve_path("embedded:smollm2")[0]
