"""Render Jinja chat templates the way transformers' `apply_chat_template` does."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRaised(Exception):
    """The chat template called `raise_exception(message)`."""


def _raise_exception(message: str) -> None:
    raise TemplateRaised(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, **_: Any) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)


class _GenerationTag(Extension):
    """transformers' `{% generation %}...{% endgeneration %}`: marks the assistant's part
    for training masks; for rendering, the block is its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> Any:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Any) -> str:
        return str(caller())


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _strftime_on(day: str) -> Any:
    """`strftime_now` frozen at midnight of `day` (YYYY-MM-DD)."""
    moment = datetime.fromisoformat(day)
    return lambda fmt: moment.strftime(fmt)


@lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, _GenerationTag]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(source)


@dataclass(frozen=True)
class ChatTemplate:
    """A model's chat template with the special tokens it refers to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""
    date: str | None = None
    """The day `strftime_now` renders (YYYY-MM-DD); None: today, as transformers does."""

    @property
    def uses_date(self) -> bool:
        """Whether the rendering depends on the day (Llama 3.2/3.3 put it in the prompt)."""
        return "strftime_now" in self.source

    def on(self, day: str) -> ChatTemplate:
        """This template with `strftime_now` frozen on `day`."""
        return replace(self, date=day)

    def render(self, messages: list[dict[str, str]], *, add_generation_prompt: bool) -> str:
        extra = {"strftime_now": _strftime_on(self.date)} if self.date else {}
        return _compile(self.source).render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            **extra,
        )
