"""End to end on the embedded SmolLM2-135M-Instruct GGUF through llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from magpie_hub.engines.base import file_sha256

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

SMOLLM2_PRE_QUERY = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n<|im_start|>user\n"
)


def test_starter_config_generates_real_rows(cli, embedded_model: Path, tmp_path: Path) -> None:
    config = tmp_path / "magpie-hub.toml"
    assert cli("init", str(config)).exit_code == 0
    result = cli(
        "generate",
        str(config),
        "--out",
        str(tmp_path / "build"),
        "--json",
        "-n",
        "4",
        "--set",
        "batch_size=2",
        "--set",
        "response.max_new_tokens=96",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert summary["generated"] + summary["dropped"] == 4
    assert summary["generated"] >= 2, summary  # SmolLM2 writes clean instructions (facts §6)

    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert manifest["pre_query_template"] == SMOLLM2_PRE_QUERY
    assert manifest["model"]["sha256"] == file_sha256(embedded_model)
    assert manifest["versions"]["engine:llamacpp"]

    rows = pq.read_table(tmp_path / "build" / "data" / "train-00000-of-00001.parquet").to_pylist()
    for row in rows:
        words = row["instruction"].split()
        assert len(words) >= 3, row["instruction"]
        assert "<|im_" not in row["instruction"] and "<|im_" not in row["response"]
        assert row["response"].strip()


def test_seeded_runs_repeat(cli, embedded_model: Path, tmp_path: Path) -> None:
    config = tmp_path / "magpie-hub.toml"
    cli("init", str(config))
    texts = []
    for name in ("a", "b"):
        result = cli(
            "generate",
            str(config),
            "--out",
            str(tmp_path / name),
            "-q",
            "-n",
            "2",
            "--set",
            "response.max_new_tokens=16",
            "--set",
            "batch_size=2",
        )
        assert result.exit_code == 0, result.stderr
        table = pq.read_table(tmp_path / name / "data" / "train-00000-of-00001.parquet")
        texts.append(table.select(["instruction", "response"]).to_pylist())
    assert texts[0] == texts[1]
