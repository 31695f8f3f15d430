"""What every engine provides: model facts read cheaply, and a raw-text distilabel LLM.

distilabel's own LLM classes assemble Magpie prompts themselves (with the
faults stack-notes lists) and take one seed at load time. Ours complete the
exact prompt text the recipe built, with one seed per row, so every engine
receives identical prompts and a row's text does not depend on batching.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilabel.models.llms.base import LLM
from pydantic import Field

from magpie_hub.chat_template import ChatTemplate

if TYPE_CHECKING:
    from magpie_hub.config import EngineConfig


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a model, read without loading its weights."""

    model_id: str
    path: Path
    sha256: str
    chat_template: ChatTemplate | None
    format: str
    """`gguf` or `hf` (a Hugging Face model folder)."""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sampling:
    """How to sample one completion."""

    temperature: float
    top_p: float
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    """`stop` (a stop string or end of sequence ended it) or `length` (max tokens)."""
    input_tokens: int
    output_tokens: int


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's weight and config files in name order."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for item in files:
        if path.is_dir():
            digest.update(str(item.relative_to(path)).encode())
        with item.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def distribution_version(name: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut `text` at the first stop string; say whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class RawTextLLM(LLM):
    """A distilabel LLM that completes raw prompt text, one seed per prompt."""

    model_path: str
    model_id: str
    threads: int | None = None
    context_length: int = 2048
    structured_output: Any = Field(default=None, exclude=True)

    @classmethod
    def for_model(cls, cfg: EngineConfig, info: ModelInfo) -> RawTextLLM:
        """An unloaded LLM for the configured engine settings and the inspected model."""
        return cls(
            model_path=str(info.path),
            model_id=info.model_id,
            threads=cfg.threads,
            context_length=cfg.context_length,
        )

    @property
    def model_name(self) -> str:
        return self.model_id

    @abstractmethod
    def complete(self, prompt: str, *, seed: int, sampling: Sampling) -> Completion:
        """Complete one prompt."""

    def complete_batch(
        self, prompts: list[str], seeds: list[int], sampling: Sampling
    ) -> list[Completion]:
        """Complete prompts, one seed each; engines that batch natively override this."""
        return [
            self.complete(p, seed=s, sampling=sampling) for p, s in zip(prompts, seeds, strict=True)
        ]

    def generate(
        self,
        inputs: list[str],
        num_generations: int = 1,
        *,
        seeds: list[int] | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 128,
        stop: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """distilabel's entry point; `seeds` holds one seed per prompt (default 0, 1, ...)."""
        sampling = Sampling(temperature, top_p, max_new_tokens, tuple(stop or ()))
        seeds = list(seeds or range(len(inputs)))
        if len(seeds) != len(inputs):
            raise ValueError(f"{len(inputs)} prompts but {len(seeds)} seeds")
        n = num_generations
        flat = self.complete_batch(
            [p for p in inputs for _ in range(n)],
            [s + g for s in seeds for g in range(n)],
            sampling,
        )
        outputs = []
        for i in range(len(inputs)):
            done = flat[i * n : (i + 1) * n]
            outputs.append(
                {
                    "generations": [c.text for c in done],
                    "statistics": {
                        "input_tokens": [c.input_tokens for c in done],
                        "output_tokens": [c.output_tokens for c in done],
                    },
                    "finish_reason": [c.finish_reason for c in done],
                }
            )
        return outputs
