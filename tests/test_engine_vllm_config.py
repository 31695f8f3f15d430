"""Engine `vllm` settings reach vLLM's `LLM`, checked without vLLM (a stand-in module)."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from magpie_hub_plugins.engine_vllm import VLLMLLM

from magpie_hub.config import EngineConfig
from magpie_hub.engines.base import ModelInfo


class FakeLLM:
    """Records what `vllm.LLM` was built with."""

    built: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        FakeLLM.built.append(kwargs)

    def get_tokenizer(self) -> object:
        return object()


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.delenv("VLLM_WORKER_MULTIPROC_METHOD", raising=False)
    FakeLLM.built = []
    return FakeLLM.built


def _info(folder: Path) -> ModelInfo:
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    return ModelInfo("tiny", folder, "0" * 64, None, "hf")


@pytest.mark.parametrize("size", [1, 4])
def test_tensor_parallel_size_reaches_vllm(
    size: int, fake_vllm: list[dict[str, Any]], tmp_path: Path
) -> None:
    cfg = EngineConfig(name="vllm", model=str(tmp_path), tensor_parallel_size=size)
    llm = VLLMLLM.for_model(cfg, _info(tmp_path))
    assert isinstance(llm, VLLMLLM) and llm.tensor_parallel_size == size
    llm.load()
    assert fake_vllm == [
        {"model": str(tmp_path), "max_model_len": 512, "seed": 0, "tensor_parallel_size": size}
    ]
    # several GPUs: vLLM's workers are spawned, not forked (unless the user chose)
    assert os.environ.get("VLLM_WORKER_MULTIPROC_METHOD") == ("spawn" if size > 1 else None)


def test_a_chosen_multiproc_method_is_kept(
    fake_vllm: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_WORKER_MULTIPROC_METHOD", "fork")
    cfg = EngineConfig(name="vllm", model=str(tmp_path), tensor_parallel_size=2)
    VLLMLLM.for_model(cfg, _info(tmp_path)).load()
    assert os.environ["VLLM_WORKER_MULTIPROC_METHOD"] == "fork"
