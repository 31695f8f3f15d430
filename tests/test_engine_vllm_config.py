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


@pytest.mark.parametrize(("platform", "passed"), [("cuda", True), ("cpu", False)])
def test_a_gpu_memory_share_reaches_vllm_on_a_gpu(
    platform: str,
    passed: bool,
    fake_vllm: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_cpu=lambda: platform == "cpu"
    )
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    cfg = EngineConfig(name="vllm", model=str(tmp_path), gpu_memory_utilization=0.45)
    llm = VLLMLLM.for_model(cfg, _info(tmp_path))
    assert llm.gpu_memory_utilization == 0.45 and llm.gpus_per_process() == 1
    llm.load()
    assert fake_vllm[0].get("gpu_memory_utilization") == (0.45 if passed else None)


def test_the_gpu_memory_share_is_checked_and_kept_out_of_the_fingerprint() -> None:
    from magpie_hub.config import RunConfig

    with pytest.raises(ValueError, match="less than or equal to 1"):
        EngineConfig(name="vllm", gpu_memory_utilization=1.5)
    shared = RunConfig.model_validate({"engine": {"gpu_memory_utilization": 0.3}})
    assert shared.fingerprint() == RunConfig().fingerprint()
