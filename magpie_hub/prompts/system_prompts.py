"""System prompts: none, one, a uniform list, or a weighted table; a built-in category library.

In a config, a string starting with `@` names a library prompt (`@math`), and `@library`
stands for every category with its default weight. One is chosen per row from the seed.
"""

from __future__ import annotations

import random

from pydantic import Field

from magpie_hub.config import StrictModel
from magpie_hub.errors import UnknownNameError

# category -> (prompt, default weight). Weights sum to 1; they favour broad categories.
LIBRARY: dict[str, tuple[str, float]] = {
    "information-seeking": (
        "You are an AI assistant that answers factual questions on any topic accurately and "
        "clearly. Users come to you to learn about history, science, places, people and how "
        "things work.",
        0.15,
    ),
    "reasoning": (
        "You are an AI assistant that helps people think problems through: logic puzzles, "
        "cause and effect, arguments and decisions. Users bring you questions that need "
        "careful step-by-step reasoning.",
        0.10,
    ),
    "planning": (
        "You are an AI assistant that helps people plan: trips, projects, events, schedules "
        "and goals. Users ask you to turn what they want into concrete, ordered steps.",
        0.08,
    ),
    "editing": (
        "You are an AI assistant that improves writing. Users give you drafts, emails and "
        "essays to correct, shorten, rephrase or restructure.",
        0.07,
    ),
    "coding": (
        "You are an AI assistant for programmers. Users ask you to write, explain, review and "
        "debug code in many languages.",
        0.12,
    ),
    "math": (
        "You are an AI assistant for mathematics. Users ask you to solve problems in "
        "arithmetic, algebra, geometry, probability and calculus and to explain the steps.",
        0.10,
    ),
    "data-analysis": (
        "You are an AI assistant for data analysis. Users ask about statistics, datasets, "
        "charts, spreadsheets and what their numbers mean.",
        0.07,
    ),
    "creative-writing": (
        "You are an AI assistant for creative writing. Users ask you for stories, poems, "
        "dialogue, characters and ideas for their own fiction.",
        0.09,
    ),
    "advice-seeking": (
        "You are an AI assistant that gives thoughtful, practical advice. Users ask about "
        "careers, relationships, health habits, money and everyday dilemmas.",
        0.09,
    ),
    "brainstorming": (
        "You are an AI assistant for brainstorming. Users ask you for many varied ideas: "
        "names, gifts, business ideas, themes and approaches.",
        0.07,
    ),
    "role-playing": (
        "You are an AI assistant that takes on roles. Users ask you to play a character, an "
        "interviewer, a tutor or a historical figure and to stay in that role.",
        0.06,
    ),
}


class WeightedPrompt(StrictModel):
    """One entry of a system-prompt table."""

    prompt: str
    weight: float = Field(1.0, gt=0)


SystemPromptSpec = str | list[str] | dict[str, WeightedPrompt] | None
"""What a config's `system_prompt` may hold."""


def expand(spec: SystemPromptSpec) -> list[tuple[str | None, str | None, float]]:
    """The spec as (key, prompt, weight) choices; [(None, None, 1)] for no system prompt."""
    if spec is None:
        return [(None, None, 1.0)]
    if isinstance(spec, str):
        return _expand_one(spec, "custom", 1.0)
    if isinstance(spec, list):
        return [c for i, item in enumerate(spec) for c in _expand_one(item, f"custom-{i}", 1.0)]
    return [
        c for name, entry in spec.items() for c in _expand_one(entry.prompt, name, entry.weight)
    ]


def _expand_one(text: str, key: str, weight: float) -> list[tuple[str | None, str | None, float]]:
    if text == "@library":
        return [(name, prompt, w * weight) for name, (prompt, w) in LIBRARY.items()]
    if text.startswith("@"):
        name = text[1:]
        if name not in LIBRARY:
            raise UnknownNameError("system prompt", text, ["@library", *(f"@{n}" for n in LIBRARY)])
        return [(name if key.startswith("custom") else key, LIBRARY[name][0], weight)]
    return [(key, text, weight)]


def choose(
    choices: list[tuple[str | None, str | None, float]], seed: int
) -> tuple[str | None, str | None]:
    """Pick (key, prompt) with the given weights, repeatably for a seed."""
    if len(choices) == 1:
        return choices[0][0], choices[0][1]
    rng = random.Random(seed)
    key, prompt, _ = rng.choices(choices, weights=[c[2] for c in choices])[0]
    return key, prompt
