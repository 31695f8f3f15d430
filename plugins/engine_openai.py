"""Engine `openai`: any OpenAI-compatible `/v1/completions` server, fed our raw prompt text.

vLLM's server, llama.cpp's server and TGI take a raw `prompt`; chat-only endpoints cannot
do Magpie (the model must continue the pre-query template) and are refused.
"""

from __future__ import annotations

import hashlib
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
from magpie_hub.engines.models import load_chat_template
from magpie_hub.engines.servers import ServerPool
from magpie_hub.errors import ConfigError, EngineError
from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import Engine

API_KEY_ENV = "MAGPIE_HUB_API_KEY"


class OpenAICompletionsLLM(RawTextLLM):
    """POST /completions with the exact prompt text, spread over one or more servers of the
    same model; a failed request moves to another server (`engines.servers`)."""

    base_urls: list[str]
    request_extra: dict[str, Any] = {}
    json_mode: str = "response_format"
    supports_json_schema = True
    batches_prompts = True  # concurrent requests, spread over the servers
    timeout: float = 600.0
    _api_key: str | None = PrivateAttr(None)
    _pool: ServerPool | None = PrivateAttr(None)

    @classmethod
    def for_model(cls, cfg: EngineConfig, info: ModelInfo) -> RawTextLLM:
        llm = cls(
            model_path=str(info.path),
            model_id=info.model_id,
            base_urls=_bases(cfg),
            request_extra=cfg.request_extra,
            json_mode=cfg.json_mode,
        )
        llm._api_key = _api_key(cfg)
        return llm

    def load(self) -> None:
        super().load()
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._pool = ServerPool(self.base_urls, headers=headers, timeout=self.timeout)
        self._pool.open()

    def unload(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def complete_batch(
        self, prompts: list[str], seeds: list[int], sampling: Sampling
    ) -> list[Completion]:
        """With several servers, as many requests in flight as there are servers."""
        if len(self.base_urls) == 1 or len(prompts) == 1:
            return super().complete_batch(prompts, seeds, sampling)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(self.base_urls)) as pool:
            return list(
                pool.map(
                    lambda ps: self.complete(ps[0], seed=ps[1], sampling=sampling),
                    zip(prompts, seeds, strict=True),
                )
            )

    def complete(self, prompt: str, *, seed: int, sampling: Sampling) -> Completion:
        assert self._pool is not None, "load() first"
        body = {
            "model": self.model_id,
            "prompt": prompt,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stop": list(sampling.stop) or None,
            "seed": seed,
            **_structured(sampling.json_schema, self.json_mode),
            **self.request_extra,
        }
        response = self._pool.post("/completions", body)
        if response.status_code != 200:
            raise EngineError(
                f"{response.request.url} answered {response.status_code}: {response.text[:300]}"
            )
        data = response.json()
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Completion(
            text=choice.get("text") or "",
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            input_tokens=usage.get("prompt_tokens", 0),
            output_tokens=usage.get("completion_tokens", 0),
        )


def _structured(schema: str | None, mode: str) -> dict[str, Any]:
    """The request fields that force `schema`, in the dialect the server speaks."""
    if schema is None or mode == "none":
        return {}
    if mode == "json_schema":
        return {"json_schema": json.loads(schema)}
    if mode == "grammar":
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        return {"grammar": json_schema_to_gbnf(schema)}
    spec = {"name": "answer", "schema": json.loads(schema), "strict": True}
    return {"response_format": {"type": "json_schema", "json_schema": spec}}


def _bases(cfg: EngineConfig) -> list[str]:
    if not cfg.base_urls():
        raise ConfigError(
            "engine 'openai' needs engine.base_url",
            field="engine.base_url",
            hint='Set it, e.g. --set engine.base_url="http://127.0.0.1:8000/v1" (or a list '
            "of servers of the same model)",
        )
    return cfg.base_urls()


def _api_key(cfg: EngineConfig) -> str | None:
    return cfg.api_key.get_secret_value() if cfg.api_key else os.environ.get(API_KEY_ENV)


def probe(cfg: EngineConfig) -> None:
    """Check that every server answers raw-prompt completions for this model."""
    key = _api_key(cfg)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for base in _bases(cfg):
        _probe_one(base, cfg.model, headers)


def _probe_one(base: str, model: str, headers: dict[str, str]) -> None:
    import httpx  # here, not at import: 0.09 s of every start

    body = {"model": model, "prompt": "Hi", "max_tokens": 1}
    try:
        response = httpx.post(f"{base}/completions", json=body, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise EngineError(
            f"cannot reach {base} ({type(exc).__name__}: {exc})",
            hint="Start the server, or fix (or remove) it in engine.base_url.",
        ) from exc
    if response.status_code in (404, 405):
        raise EngineError(
            f"{base} has no /completions endpoint: a chat-only API cannot run Magpie, which "
            "needs the model to continue raw pre-query text",
            hint="Use a server with /v1/completions (vLLM, llama.cpp's server, TGI).",
        )
    if response.status_code in (401, 403):
        raise EngineError(
            f"{base} refused the API key ({response.status_code})",
            hint=f"Set engine.api_key or the {API_KEY_ENV} variable.",
        )
    if response.status_code != 200:
        raise EngineError(
            f"{base}/completions answered {response.status_code}: {response.text[:300]}"
        )


def inspect_model(cfg: EngineConfig) -> ModelInfo:
    probe(cfg)
    template = load_chat_template(Path(cfg.tokenizer)) if cfg.tokenizer else None
    if cfg.chat_template:
        from magpie_hub.prompts.chat_template import ChatTemplate

        template = ChatTemplate(
            cfg.chat_template,
            template.bos_token if template else "",
            template.eos_token if template else "",
        )
    # The model and its template are the identity; which servers serve it is not.
    identity = f"{cfg.model}|{template.source if template else ''}"
    return ModelInfo(
        model_id=cfg.model,
        path=Path(cfg.tokenizer or "."),
        sha256=hashlib.sha256(identity.encode()).hexdigest(),
        chat_template=template,
        format="remote",
        details={"base_urls": _bases(cfg)},
    )


@hookimpl
def register_engines(register: Callable[[Engine], None]) -> None:
    register(
        Engine(
            name="openai",
            description="Any OpenAI-compatible /v1/completions server (vLLM, llama.cpp, TGI).",
            inspect_model=inspect_model,
            make_llm=OpenAICompletionsLLM.for_model,
            library_version=lambda: distribution_version("httpx"),
        )
    )
