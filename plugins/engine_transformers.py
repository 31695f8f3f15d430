"""Engine `transformers`: Hugging Face model folders (or Hub ids) through transformers."""

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
    cut_at_stop,
    distribution_version,
)
from magpie_hub.engines.models import hf_model_folder, inspect_hf_folder
from magpie_hub.errors import MissingDependencyError
from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import Engine

INSTALL = "pip install 'magpie-hub[transformers]' (install torch first for a CPU-only build)"


class TransformersLLM(RawTextLLM):
    """transformers `generate` on raw prompts; one prompt at a time, seeded per prompt."""

    _model: Any = PrivateAttr(None)
    _tokenizer: Any = PrivateAttr(None)
    supports_first_token_ban = True
    uses_cpu_threads = True

    def load(self) -> None:
        super().load()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self._model = AutoModelForCausalLM.from_pretrained(self.model_path)
        self._model.eval()
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    def unload(self) -> None:
        self._model = self._tokenizer = None

    def vocabulary(self) -> Iterator[tuple[int, str]]:
        for i in range(len(self._tokenizer)):
            yield i, self._tokenizer.decode([i])

    def complete(self, prompt: str, *, seed: int, sampling: Sampling) -> Completion:
        import torch
        from transformers import LogitsProcessorList

        temperature, top_p, max_new_tokens = (
            sampling.temperature,
            sampling.top_p,
            sampling.max_new_tokens,
        )
        stop = list(sampling.stop)
        tok = self._tokenizer
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")
        start = ids["input_ids"].shape[1]
        banned = sampling.ban_first_tokens
        processors = (
            LogitsProcessorList([_BanFirst(start, self.banned_first_ids(banned))])
            if banned
            else None
        )
        torch.manual_seed(seed)
        sample = temperature > 0
        with torch.no_grad():
            out = self._model.generate(
                **ids,
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                temperature=temperature if sample else None,
                top_p=top_p if sample else None,
                top_k=None,
                stop_strings=stop or None,
                tokenizer=tok,
                logits_processor=processors,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            )
        new = out[0, start:]
        raw = tok.decode(new, skip_special_tokens=False)
        ends = [*stop, tok.eos_token] if tok.eos_token else stop
        text, stopped = cut_at_stop(raw, ends)
        hit_eos = tok.eos_token_id is not None and len(new) and int(new[-1]) == tok.eos_token_id
        finished = stopped or bool(hit_eos) or len(new) < max_new_tokens
        return Completion(
            text=text,
            finish_reason="stop" if finished else "length",
            input_tokens=int(ids["input_ids"].shape[1]),
            output_tokens=len(new),
        )


class _BanFirst:
    """A transformers logits processor that bans `ids` at the first generated position."""

    def __init__(self, start: int, ids: list[int]) -> None:
        self.start, self.ids = start, ids

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if input_ids.shape[1] == self.start:
            scores[:, self.ids] = float("-inf")
        return scores


def _library_version() -> str | None:
    return distribution_version("transformers")


def inspect_model(cfg: EngineConfig) -> ModelInfo:
    if _library_version() is None:
        raise MissingDependencyError("transformers", "engine 'transformers'", INSTALL)
    return inspect_hf_folder(hf_model_folder(cfg), cfg.chat_template)


@hookimpl
def register_engines(register: Callable[[Engine], None]) -> None:
    register(
        Engine(
            name="transformers",
            description="Hugging Face model folders through transformers (CPU or GPU).",
            inspect_model=inspect_model,
            make_llm=TransformersLLM.for_model,
            library_version=_library_version,
        )
    )
