"""LaMini-LM instruction prompts (arXiv 2304.14402): example- and topic-guided, and a
lenient parser of the tagged list a model writes back.

Pure functions: no model, no files. The recipe (`plugins/recipe_lamini.py`) draws the
seeds and topics with `draw`, renders with `render`, and parses with `parse_list`.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

OPEN, CLOSE = "<example>", "</example>"
SEEDS_PER_PROMPT = 3
TOPICS_PER_PROMPT = 3
SOURCES = ("example_guided", "topic_guided")

_NUMBERING = re.compile(
    r"^\s*(?:\(?\d{1,3}[.):\]]|[-*\u2022]|#{1,6}|instruction\s*\d*\s*:)\s*", re.I
)
_TAG = re.compile(r"</?\s*example\s*>", re.I)
_PREAMBLE = re.compile(
    r"^(?:sure|here (?:are|is)|certainly|okay|ok|of course)\b|:\s*$",
    re.I,
)


def render(seeds: Sequence[str], n: int, topics: Sequence[str] = ()) -> str:
    """The instruction-generation prompt: the seed instructions, each in `<example>` tags,
    then the request for `n` new ones (with the topics, when given: topic-guided)."""
    examples = "\n".join(f"{OPEN}{s.strip()}{CLOSE}" for s in seeds)
    about = f' with the topics "{", ".join(t.strip() for t in topics)}"' if topics else ""
    return (
        f"{examples}\n\n"
        f"Generate {n} diverse examples that are similar to the provided examples{about}.\n"
        "You do not need to provide a response to the generated examples.\n"
        "Each example must include an instruction.\n"
        "Each generated instruction can be either an imperative sentence or a question.\n"
        f'Each example must start with the label "{OPEN}" and end with the label "{CLOSE}".'
    )


@dataclass(frozen=True)
class Draw:
    """What one prompt shows: its source, seed instructions and topics."""

    source: str
    seeds: list[str]
    topics: list[str]


def draw(seeds: Sequence[str], topics: Sequence[str], topic_share: float, rng_seed: int) -> Draw:
    """Draw (seeded) three seeds, and with probability `topic_share` three topics. With
    fewer seeds or topics than three, all of them are shown (in drawn order)."""
    rng = random.Random(rng_seed)
    guided = bool(topics) and rng.random() < topic_share
    shown = rng.sample(list(seeds), min(SEEDS_PER_PROMPT, len(seeds)))
    chosen = rng.sample(list(topics), min(TOPICS_PER_PROMPT, len(topics))) if guided else []
    return Draw(SOURCES[1] if guided else SOURCES[0], shown, chosen)


@dataclass
class ParsedList:
    """The instructions found, in order, and what was done to the rest."""

    items: list[str] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    """Reason -> items (or stray text pieces) left out: `blank`, `duplicate`, `preamble`,
    `noise` (text outside the tags), `too_short`, `seed_copy`."""
    cleaned: Counter[str] = field(default_factory=Counter)
    """Fix -> items kept after it: `missing_close_tag`, `numbering`, `untagged`."""


def normalize(text: str) -> str:
    """The dedup key: case-folded, whitespace collapsed, trailing punctuation kept."""
    return " ".join(text.casefold().split())


def parse_list(
    text: str | None,
    *,
    seeds: Sequence[str] = (),
    min_words: int = 2,
    truncated: bool = False,
) -> ParsedList:
    """Instructions from a model's answer. Tagged items (`<example>...</example>`) are read
    first; a missing closing tag ends the item at the next tag or the end. Without any tag,
    each non-empty line is an item (`untagged`). Numbering and bullets are removed; blank,
    too short, preamble lines, copies of a shown seed and duplicates (case-insensitive)
    are dropped and counted. `truncated` (the token limit ended the answer): the last,
    cut-off item is dropped as `truncated`."""
    out = ParsedList()
    if not text:
        return out
    if truncated:
        text = _cut_tail(text, out)
    candidates = _tagged(text, out) if _TAG.search(text) else _lines(text)
    seen = {normalize(s) for s in seeds}
    taken: set[str] = set()
    for raw, fixes in candidates:
        item, numbered = _clean(raw)
        if not item:
            out.dropped["blank"] += 1
            continue
        if _PREAMBLE.search(item) and "untagged" in fixes:
            out.dropped["preamble"] += 1
            continue
        if len(item.split()) < min_words:
            out.dropped["too_short"] += 1
            continue
        key = normalize(item)
        if key in seen:
            out.dropped["seed_copy"] += 1
            continue
        if key in taken:
            out.dropped["duplicate"] += 1
            continue
        taken.add(key)
        out.items.append(item)
        for fix in [*fixes, *(["numbering"] if numbered else [])]:
            out.cleaned[fix] += 1
    return out


def _tagged(text: str, out: ParsedList) -> list[tuple[str, list[str]]]:
    """Items between tags: `<example>` opens one; `</example>` closes it; text outside
    any item is noise (counted, unless only whitespace or numbering)."""
    found: list[tuple[str, list[str]]] = []
    parts = re.split(r"(</?\s*example\s*>)", text, flags=re.I)
    current: list[str] | None = None
    for part in parts:
        tag = part.strip().lower().replace(" ", "")
        if tag == OPEN:
            if current is not None:  # a new item opens before the last one closed
                found.append(("".join(current), ["missing_close_tag"]))
            current = []
        elif tag == CLOSE:
            if current is None:  # a closing tag without an opening one: stray text
                continue
            found.append(("".join(current), []))
            current = None
        elif current is not None:
            current.append(part)
        elif _clean(part)[0]:
            out.dropped["noise"] += 1
    if current is not None:
        # An unclosed last item: up to its first blank line (the rest is chatter).
        found.append((re.split(r"\n\s*\n", "".join(current).strip())[0], ["missing_close_tag"]))
    return found


def _cut_tail(text: str, out: ParsedList) -> str:
    """`text` up to its last complete item: the last closing tag, else the last newline."""
    tags = list(_TAG.finditer(text))
    if tags:  # after the last closing tag, or before the last (unclosed) opening one
        last = tags[-1]
        end = last.end() if last.group().startswith("</") else last.start()
    else:
        end = max(text.rfind("\n"), 0)
    if text[end:].strip():
        out.dropped["truncated"] += 1
    return text[:end]


def _lines(text: str) -> list[tuple[str, list[str]]]:
    return [(line, ["untagged"]) for line in text.splitlines() if line.strip()]


def _clean(raw: str) -> tuple[str, bool]:
    """An item without numbering, bullets, quotes and surrounding space; and whether a
    numbering prefix was removed."""
    text = " ".join(raw.split())
    stripped = _NUMBERING.sub("", text, count=1)
    numbered = stripped != text
    stripped = stripped.strip().strip('"\u201c\u201d').strip()
    return stripped, numbered and bool(stripped)
