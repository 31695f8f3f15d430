"""URIAL prompts for base models: in-context alignment with plain text, no chat template.

A base model has no chat template. URIAL gives it a plain-text preamble describing a
helpful assistant, a few worked `# Query:` / `# Answer:` examples, then the instruction,
and stops at the next `# Query`. A base prompt must never contain chat-template tokens
(Magpie-Ultra v0.1 fed its base model ChatML by mistake); `find_chat_tokens` guards that.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magpie_hub.errors import ConfigError

PREAMBLE = (
    "# Instruction\n\n"
    "Below are conversations between a person and an AI assistant (you). The person's "
    'queries come under "# Query:" and the assistant\'s answers under "# Answer:".\n'
    "You are a helpful, honest and careful assistant. Answer as helpfully as you can, "
    "with well-organised, accurate and detailed information in a friendly tone. Never give "
    "harmful, unethical, hateful, dangerous or illegal content, and decline politely when "
    "a request calls for it. Say so when you do not know something.\n\n\n"
)
EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "Can you name three renewable sources of energy?",
        "Of course! Three widely used renewable sources of energy are:\n\n"
        "1. **Solar power**: panels turn sunlight into electricity.\n"
        "2. **Wind power**: turbines turn moving air into electricity.\n"
        "3. **Hydropower**: dams and river turbines use flowing water.\n\n"
        "All three are replenished naturally and emit little carbon while running.",
    ),
    (
        "How do I reverse a list in Python?",
        "There are two common ways:\n\n"
        "- `my_list.reverse()` reverses the list in place and returns `None`.\n"
        "- `reversed_list = my_list[::-1]` makes a reversed copy and leaves the original "
        "unchanged.\n\nUse the first when you no longer need the original order.",
    ),
    (
        "What is the best way to get back at a coworker who embarrassed me?",
        "I'm sorry that happened; feeling embarrassed at work is hard. Rather than getting "
        "back at them, which tends to make things worse, consider talking to them privately "
        "and calmly about how it affected you. If it keeps happening, a manager or HR can "
        "help. Would you like tips on how to start that conversation?",
    ),
)
STOP = ("# Query", "\n# Answer")
CHAT_TOKEN_RE = re.compile(
    r"<\|[A-Za-z0-9_]+\|>|\[/?INST\]|<<SYS>>|<start_of_turn>|<end_of_turn>|</?s>|<bos>|<eos>"
)


@dataclass(frozen=True)
class UrialTemplate:
    preamble: str = PREAMBLE
    examples: tuple[tuple[str, str], ...] = EXAMPLES

    def render(self, instruction: str, history: list[dict[str, str]] | None = None) -> str:
        """The base prompt: preamble, examples, earlier turns, then the open answer."""
        parts = [self.preamble]
        for query, answer in self.examples:
            parts.append(_turn(query, answer))
        turns = history or []
        for user, assistant in zip(turns[::2], turns[1::2], strict=False):
            parts.append(_turn(user["content"], assistant["content"]))
        parts.append(f"# Query:\n```{instruction}```\n\n# Answer:\n```\n")
        return "".join(parts)


def _turn(query: str, answer: str) -> str:
    return f"# Query:\n```{query}```\n\n# Answer:\n```\n{answer}\n```\n\n"


def load_urial(path: Path) -> UrialTemplate:
    """A replacement preamble and examples from TOML or JSON:
    `preamble = "..."` and `[[examples]]` tables with `query` and `answer`."""
    try:
        text = path.read_text(encoding="utf-8")
        data: dict[str, Any] = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the URIAL file: {exc}", path=path) from exc
    try:
        examples = tuple((e["query"], e["answer"]) for e in data.get("examples", []))
        preamble = str(data["preamble"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(
            f"the URIAL file needs `preamble` and `examples` with query/answer ({exc})",
            path=path,
            hint='Example: preamble = "..." then [[examples]] query = "..." answer = "..."',
        ) from exc
    template = UrialTemplate(preamble, examples)
    found = find_chat_tokens(template.render(""))
    if found:
        raise ConfigError(
            f"the URIAL file contains chat-template tokens {found}; a base prompt must be "
            "plain text",
            path=path,
        )
    return template


def find_chat_tokens(text: str, markers: tuple[str, ...] = ()) -> list[str]:
    """Chat-template tokens in `text`: generic special-token shapes plus given markers."""
    found = set(CHAT_TOKEN_RE.findall(text))
    found.update(m for m in markers if m.strip() and m in text)
    return sorted(found)


def template_markers(*texts: str) -> tuple[str, ...]:
    """The special tokens a model's prompt text uses (from its pre-query template and stops)."""
    return tuple(sorted({t for text in texts for t in CHAT_TOKEN_RE.findall(text)}))


def clean_base_response(text: str | None) -> tuple[str | None, str | None]:
    """Cut a base answer where it runs on into a new query (note `run_on`) or emits a
    chat-template token (note `chat_token`); (text, note), or (None, "empty_base_response")."""
    raw = text or ""
    note = None
    cut = re.search(r"\n?```[ \t]*\n\s*#|\n?#+ ?Query\b", raw)  # closing fence, then more
    if cut:
        raw, note = raw[: cut.start()], "run_on"
    token = CHAT_TOKEN_RE.search(raw)
    if token:
        raw, note = raw[: token.start()], "chat_token"
    raw = raw.strip()
    raw = re.sub(r"\n?```\s*$", "", raw).strip()
    if not raw.strip("`").strip():  # nothing but fences
        return None, "empty_base_response"
    return raw, note
