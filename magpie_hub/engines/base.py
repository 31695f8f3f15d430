"""What every engine provides: model facts read cheaply, and a raw-text distilabel LLM.

distilabel's own LLM classes assemble Magpie prompts themselves (with the
faults stack-notes lists) and take one seed at load time. Ours complete the
exact prompt text the recipe built, with one seed per row, so every engine
receives identical prompts and a row's text does not depend on batching.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from distilabel.models.llms.base import LLM
from pydantic import Field, PrivateAttr

from magpie_hub.errors import EngineError
from magpie_hub.prompts.chat_template import ChatTemplate

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
    ban_first_tokens: tuple[str, ...] = ()
    """Token texts (surrounding whitespace ignored) the first sampled token may not be."""
    json_schema: str | None = None
    """A JSON schema the output must follow, on engines that support it (else ignored)."""


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    """`stop` (a stop string or end of sequence ended it) or `length` (max tokens)."""
    input_tokens: int
    output_tokens: int


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files in name order; cached per file identity."""
    from magpie_hub.engines.file_cache import cached_file_result

    return cached_file_result(path, "sha256", lambda: _hash_files(path))


def _hash_files(path: Path) -> str:
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


def banned_token_ids(vocabulary: Iterable[tuple[int, str]], texts: Iterable[str]) -> list[int]:
    """Ids of the tokens whose text, without surrounding whitespace, is one of `texts`."""
    wanted = {t.strip() for t in texts if t.strip()}
    return [i for i, piece in vocabulary if piece.strip() in wanted]


PROMPT_LOG_ENV = "MAGPIE_HUB_LOG_PROMPTS"
"""Names a file to which every engine appends each prompt it is sent, as JSON lines."""


def log_prompts(path: Path, prompts: list[str], seeds: list[int], sampling: Sampling) -> None:
    """Append one JSON line per prompt: the exact text, its seed and the sampling."""
    lines = "".join(
        json.dumps({"prompt": p, "seed": s, **asdict(sampling)}) + "\n"
        for p, s in zip(prompts, seeds, strict=True)
    )
    with path.open("a", encoding="utf-8") as fh:  # one write per batch: workers append
        fh.write(lines)


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut `text` at the first stop string; say whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class Preloads:
    """What engines loaded in the driver for the step processes it forks, by key. Loads
    run in threads, overlapping the driver's remaining set-up; `wait` before forking."""

    def __init__(self) -> None:
        self.items: dict[Any, Any] = {}
        self.threads: list[threading.Thread] = []

    def start(self, key: Any, make: Callable[[], Any]) -> None:
        if key in self.items:
            return
        self.items[key] = None

        def run() -> None:
            try:
                self.items[key] = make()
            except Exception:
                self.items.pop(key, None)

        thread = threading.Thread(target=run, name="magpie-hub-preload", daemon=True)
        self.threads.append(thread)
        thread.start()

    def wait(self) -> None:
        """Let every load finish: nothing may be loading when the driver forks."""
        while self.threads:
            self.threads.pop().join()

    def take(self, key: Any) -> Any:
        """The item for `key`, once per process (a forked step process has its own copy),
        or None: none was preloaded, or loads had not finished when this process forked."""
        return None if self.threads else self.items.pop(key, None)

    def clear(self) -> None:
        """Drop the driver's items once the run is over."""
        self.wait()
        self.items.clear()


PRELOADS = Preloads()
"""Used by `generate` on the local backend: engines' `preload`, then `wait` before the run."""


class RawTextLLM(LLM):
    """A distilabel LLM that completes raw prompt text, one seed per prompt."""

    model_path: str
    model_id: str
    threads: int | None = None
    context_length: int = 2048
    structured_output: Any = Field(default=None, exclude=True)
    supports_json_schema: ClassVar[bool] = False
    """Whether `Sampling.json_schema` constrains the output (else callers parse leniently)."""
    supports_first_token_ban: ClassVar[bool] = False
    """Whether the engine can ban tokens at the first position only (`ban_first_tokens`)."""
    uses_cpu_threads: ClassVar[bool] = False
    """Whether `threads` sets how many CPU cores the engine computes on."""
    mmaps_weights: ClassVar[bool] = False
    """Whether processes running the same model share its weights (a memory-mapped file),
    so another replica of a step costs no second copy."""
    batches_prompts: ClassVar[bool] = False
    """Whether `complete_batch` runs a batch's prompts together (natively or as concurrent
    requests). If not, its steps take one row per batch: replicas then share the rows
    evenly and the next step starts on the first row, not the first batch (`execution`)."""
    gpu_memory_utilization: float | None = None
    """Share of each GPU's memory this engine process reserves (GPU engines; None: theirs)."""
    run_env: dict[str, str] = Field(default_factory=dict, exclude=True)
    """Variables set in the step's process when the LLM loads (it may run on a Ray node)."""
    _banned: dict[tuple[str, ...], list[int]] = PrivateAttr(default_factory=dict)

    def load(self) -> None:
        os.environ.update(self.run_env)
        super().load()

    def preload(self) -> None:
        """Start loading, in the driver, what the step processes forked from it can take
        instead of loading it each (`PRELOADS`); called only before a local pipeline
        forks. The driver must never compute on it. Default: nothing."""

    @classmethod
    def for_model(cls, cfg: EngineConfig, info: ModelInfo) -> RawTextLLM:
        """An unloaded LLM for the configured engine settings and the inspected model."""
        return cls(
            model_path=str(info.path),
            model_id=info.model_id,
            threads=cfg.threads,
            context_length=cfg.context_length,
        )

    def gpus_per_process(self) -> int:
        """GPUs one process of this engine computes on (0: none, or not on this machine)."""
        return 0

    @property
    def model_name(self) -> str:
        return self.model_id

    def vocabulary(self) -> Iterator[tuple[int, str]]:
        """Every token id with its decoded text (engines that support first-token bans)."""
        raise NotImplementedError

    def banned_first_ids(self, texts: tuple[str, ...]) -> list[int]:
        """The ids `ban_first_tokens` stands for in this model's vocabulary (computed once)."""
        if not self.supports_first_token_ban:
            raise EngineError(f"engine {type(self).__name__} cannot ban first tokens")
        if texts not in self._banned:
            self._banned[texts] = banned_token_ids(self.vocabulary(), texts)
        return self._banned[texts]

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
        ban_first_tokens: list[str] | None = None,
        json_schema: str | None = None,
    ) -> list[dict[str, Any]]:
        """distilabel's entry point; `seeds` holds one seed per prompt (default 0, 1, ...)."""
        if ban_first_tokens and not self.supports_first_token_ban:
            raise EngineError(f"engine {type(self).__name__} cannot ban first tokens")
        sampling = Sampling(
            temperature,
            top_p,
            max_new_tokens,
            tuple(stop or ()),
            tuple(ban_first_tokens or ()),
            json_schema if self.supports_json_schema else None,
        )
        seeds = list(seeds or range(len(inputs)))
        if len(seeds) != len(inputs):
            raise ValueError(f"{len(inputs)} prompts but {len(seeds)} seeds")
        if log := os.environ.get(PROMPT_LOG_ENV):
            log_prompts(Path(log), inputs, seeds, sampling)
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
