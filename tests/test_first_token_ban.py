"""`instruction.ban_first_tokens`: the first sampled token is never a banned one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_config, write_config

from magpie_hub.engines.base import Sampling, banned_token_ids

HEADERS = ("#", "##", "###", "####", "**")

# Runs in a fresh process: torch or llama.cpp work in the pytest process would deadlock
# the workers distilabel forks in later tests (README, "Known limitations").
PROBE = """
import json, sys
from magpie_hub.config import EngineConfig
from magpie_hub.engines.base import Sampling
from magpie_hub.plugins import get_registry

name, model, prompt = sys.argv[1:4]
cfg = EngineConfig(name=name, model=model)
engine = get_registry().engine(name)
llm = engine.make_llm(cfg, engine.inspect_model(cfg))
llm.load()
one = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=1)
first = llm.complete(prompt, seed=1, sampling=one).text
ban = Sampling(0.0, 1.0, 1, (), (first,))
again = llm.complete(prompt, seed=1, sampling=ban).text
headers = llm.banned_first_ids(("#", "##", "###", "####", "**"))
pieces = dict(llm.vocabulary())
print(json.dumps({"first": first, "again": again, "headers": [pieces[i] for i in headers]}))
"""


def probe(engine: str, model: Path, prompt: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, engine, str(model), prompt],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_banned_ids_match_text_ignoring_surrounding_whitespace() -> None:
    vocab = [(0, "#"), (1, " ##"), (2, "#include"), (3, "**"), (4, " "), (5, "a"), (6, "###\n")]
    assert banned_token_ids(vocab, HEADERS) == [0, 1, 3, 6]
    assert banned_token_ids(vocab, [" ", ""]) == []


def assert_ban_works(result: dict) -> None:
    assert result["first"].strip(), result  # the probe needs a visible first token
    assert result["again"].strip() != result["first"].strip(), result
    assert {h.strip() for h in result["headers"]} <= set(HEADERS)


@pytest.mark.slow
@pytest.mark.embedded
def test_llamacpp_never_starts_with_a_banned_token(embedded_model: Path) -> None:
    prompt = (
        "<|im_start|>user\nWrite a README.md for a Python project called cats.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    result = probe("llamacpp", embedded_model, prompt)
    assert_ban_works(result)
    # SmolLM2's vocabulary has the headers with and without a leading space.
    assert {"#", " #", "##", " ##", "**", " **"} <= set(result["headers"])


@pytest.mark.slow
def test_transformers_never_starts_with_a_banned_token(tiny_model: Path) -> None:
    assert_ban_works(probe("transformers", tiny_model, "Hello there, what is"))


def test_an_engine_that_cannot_ban_is_refused_before_any_work(cli, with_plugins, tmp_path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        'recipe = "magpie"\nnum_rows = 2\n[engine]\nname = "echo"\nmodel = "x"\n'
        '[instruction]\nban_first_tokens = ["#"]\n',
    )
    result = cli("generate", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1, result.stderr
    assert "instruction.ban_first_tokens" in result.stderr
    assert "cannot ban first tokens" in result.stderr
    assert not (tmp_path / "b").exists()


def test_sampling_carries_the_ban_to_the_engine() -> None:
    assert Sampling(1.0, 1.0, 8, (), HEADERS).ban_first_tokens == HEADERS


@pytest.mark.slow
def test_generate_with_a_ban_writes_rows(cli, tiny_model, tmp_path) -> None:
    extra_config = tiny_config(tiny_model, num_rows=2, batch_size=2).replace(
        "[instruction]\n", '[instruction]\nban_first_tokens = ["#", "##", "**"]\n'
    )
    config = write_config(tmp_path / "c.toml", extra_config)
    result = cli("generate", str(config), "--out", str(tmp_path / "b"), "--quiet")
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["config"]["instruction"]["ban_first_tokens"] == ["#", "##", "**"]
    assert manifest["status"] == "complete"
