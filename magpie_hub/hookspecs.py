"""The hooks a magpie-hub plugin can implement. Built-ins use exactly these."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from magpie_hub.registry import CardSection, Engine, Recipe, ReviewSpec, Scorer, Tagger

hookspec = pluggy.HookspecMarker("magpie_hub")
hookimpl = pluggy.HookimplMarker("magpie_hub")


@hookspec
def register_recipes(register: Callable[[Recipe], None]) -> None:
    """Register recipes: named builders from a validated config to a distilabel Pipeline."""


@hookspec
def register_engines(register: Callable[[Engine], None]) -> None:
    """Register LLM engines: how to inspect a model and make its distilabel LLM."""


@hookspec
def register_scorers(register: Callable[[Scorer], None]) -> None:
    """Register scorers for response pairs: a name and a factory of a distilabel step."""


@hookspec
def register_review_specs(register: Callable[[ReviewSpec], None]) -> None:
    """Register how a recipe's rows are shown and asked about in Argilla (one per recipe)."""


@hookspec
def register_card_sections(register: Callable[[CardSection], None]) -> None:
    """Register dataset card sections: a title and a function from the release to Markdown."""


@hookspec
def register_taggers(register: Callable[[Tagger], None]) -> None:
    """Register taggers: named steps that add tag columns to a build (`magpie-hub curate`)."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands or command groups to the `magpie-hub` Typer app."""
