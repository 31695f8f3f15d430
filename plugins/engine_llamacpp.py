"""Engine `llamacpp`: GGUF models through llama-cpp-python, raw text prompts."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import PrivateAttr

from magpie_hub.config import EngineConfig
from magpie_hub.engines.base import (
    PRELOADS,
    Completion,
    ModelInfo,
    RawTextLLM,
    Sampling,
    distribution_version,
)
from magpie_hub.engines.models import inspect_gguf, resolve_path
from magpie_hub.errors import MissingDependencyError, ModelNotFoundError
from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import Engine

INSTALL = (
    "pip install 'magpie-hub[llamacpp]' (on CPUs that fault on AMX, build portably: "
    "see the README's install notes)"
)


class LlamaCppLLM(RawTextLLM):
    """llama.cpp completion of raw prompts; special tokens in the prompt are parsed as such."""

    _model: Any = PrivateAttr(None)
    _grammars: dict[str, Any] = PrivateAttr(default_factory=dict)
    supports_first_token_ban = True
    uses_cpu_threads = True
    mmaps_weights = True
    supports_json_schema = True

    def load(self) -> None:
        super().load()
        model = PRELOADS.take(self._key())
        if model is None:
            model = self._new_model()
        else:  # loaded on one thread in the driver: this process's share of the cores
            model._ctx.set_n_threads(self._n_threads(), self._n_threads(batch=True))
            model.n_threads, model.n_threads_batch = self._n_threads(), self._n_threads(batch=True)
        self._model = model

    def preload(self) -> None:
        """Each step process loaded its own model: 0.35-0.4 s before the first request,
        three at once on 2 cores. Loading makes no llama.cpp thread pool; a GPU build's
        device cannot be shared by a fork, so it is not preloaded."""
        PRELOADS.start(self._key(), self._cpu_model)

    def _cpu_model(self) -> Any:
        """The model on one thread, or None with a GPU build (the preload's loader)."""
        import llama_cpp

        return None if llama_cpp.llama_supports_gpu_offload() else self._new_model(threads=1)

    def _key(self) -> tuple[str, int]:
        return (self.model_path, self.context_length)

    def _n_threads(self, *, batch: bool = False) -> int:
        """Threads of this process: llama-cpp-python's defaults when `threads` is unset."""
        cores = multiprocessing.cpu_count()
        return self.threads or (cores if batch else max(cores // 2, 1))

    def _new_model(self, *, threads: int | None = None) -> Any:
        from llama_cpp import Llama

        return Llama(
            model_path=self.model_path,
            n_ctx=self.context_length,
            n_threads=threads or self._n_threads(),
            n_threads_batch=threads or self._n_threads(batch=True),  # else every core
            verbose=False,
        )

    def unload(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None

    def vocabulary(self) -> Iterator[tuple[int, str]]:
        for i in range(self._model.n_vocab()):
            yield i, self._model.detokenize([i]).decode("utf-8", errors="replace")

    def _grammar(self, schema: str | None) -> Any:
        """A llama.cpp grammar for a JSON schema (built once per schema)."""
        if schema is None:
            return None
        if schema not in self._grammars:
            from llama_cpp import LlamaGrammar

            self._grammars[schema] = LlamaGrammar.from_json_schema(schema, verbose=False)
        return self._grammars[schema]

    def complete(self, prompt: str, *, seed: int, sampling: Sampling) -> Completion:
        banned = sampling.ban_first_tokens
        processors = [_ban_first(self.banned_first_ids(banned))] if banned else None
        out = self._model.create_completion(
            prompt,
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            stop=list(sampling.stop) or None,
            seed=seed,
            logits_processor=processors,
            grammar=self._grammar(sampling.json_schema),
        )
        choice = out["choices"][0]
        usage = out.get("usage", {})
        return Completion(
            text=choice["text"],
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            input_tokens=usage.get("prompt_tokens", 0),
            output_tokens=usage.get("completion_tokens", 0),
        )


def _ban_first(ids: list[int]) -> Callable[[Any, Any], Any]:
    """A llama.cpp logits processor that bans `ids` for the first sampled token only."""
    calls = 0

    def processor(input_ids: Any, scores: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            scores[ids] = float("-inf")
        return scores

    return processor


def _library_version() -> str | None:
    return distribution_version("llama-cpp-python")


def inspect_model(cfg: EngineConfig) -> ModelInfo:
    if _library_version() is None:
        raise MissingDependencyError("llama-cpp-python", "engine 'llamacpp'", INSTALL)
    path, model_id = resolve_path(cfg.model)
    if not path.is_file() or path.suffix != ".gguf":
        raise ModelNotFoundError(
            cfg.model,
            hint="The llamacpp engine takes a .gguf file; for a model folder use "
            '`engine.name = "transformers"`.',
        )
    return inspect_gguf(path, model_id, cfg.chat_template)


@hookimpl
def register_engines(register: Callable[[Engine], None]) -> None:
    register(
        Engine(
            name="llamacpp",
            description="GGUF models on CPU or GPU through llama-cpp-python (the default).",
            inspect_model=inspect_model,
            make_llm=LlamaCppLLM.for_model,
            library_version=_library_version,
        )
    )
