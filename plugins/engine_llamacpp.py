"""Engine `llamacpp`: GGUF models through llama-cpp-python, raw text prompts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
        from llama_cpp import Llama

        self._model = Llama(
            model_path=self.model_path,
            n_ctx=self.context_length,
            n_threads=self.threads,
            n_threads_batch=self.threads,  # else all cores, in every step's process
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
