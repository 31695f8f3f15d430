"""Instruction Pre-Training's synthesizer format (arXiv 2406.14491): the prompt for one
raw text (optionally chained few-shot after earlier texts and their pairs), the parser of
the `<QUE> ... <ANS> ... </END>` pairs, text splitting to fit a context, and the two
renderings of a text with its pairs (pre-training text, conversation).

Pure functions: no model, no files.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

BOS, EOS = "<s>", "</s>"
CON, CON_END = "<CON>", "</CON>"
QUE, ANS, END = "<QUE>", "<ANS>", "</END>"

Pair = dict[str, str]
"""{"question": ..., "answer": ...}"""


def words(text: str) -> int:
    return len(text.split())


def render_pairs(pairs: Sequence[Pair]) -> str:
    """Pairs as the synthesizer writes them, separated by blank lines."""
    return "\n\n".join(f"{QUE} {p['question']} {ANS} {p['answer']} {END}" for p in pairs)


def render_one(text: str, pairs: Sequence[Pair] | None = None, *, bos: str = BOS) -> str:
    """One text's block: `<s> <CON> {text} </CON>\\n\\n`, followed, for an earlier text of
    a chain, by its pairs and `</s>`."""
    head = f"{bos} {CON} {text} {CON_END}\n\n"
    if pairs is None:
        return head
    return f"{head}{render_pairs(pairs)} {EOS}"


@dataclass(frozen=True)
class Prompt:
    text: str
    shots: int
    """Earlier texts chained before this one."""
    words: int


def render(
    text: str,
    earlier: Sequence[tuple[str, Sequence[Pair]]] = (),
    *,
    budget_words: int | None = None,
    bos: str = BOS,
) -> Prompt:
    """The prompt for `text`, after as many of the `earlier` (text, pairs) as fit in
    `budget_words` with it (the most recent ones are kept; earlier ones without pairs are
    skipped: a chain only shows finished examples)."""
    current = render_one(text, bos=bos)
    used = words(current)
    blocks: list[str] = []
    for before, pairs in reversed(list(earlier)):
        if not pairs:
            continue
        block = render_one(before, pairs, bos=bos)
        if budget_words is not None and used + words(block) > budget_words:
            break
        blocks.insert(0, block)
        used += words(block)
    return Prompt("".join(blocks) + current, len(blocks), used)


@dataclass
class ParsedPairs:
    pairs: list[Pair] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    """Reason -> pieces left out: `unfinished` (the last pair, without `</END>`),
    `missing_end` (an earlier pair without it), `missing_answer`, `empty`,
    `duplicate_question` (case-insensitive), `noise` (text before the first `<QUE>`)."""


def _key(question: str) -> str:
    return " ".join(question.casefold().split())


def parse_pairs(output: str | None) -> ParsedPairs:
    """The pairs of a synthesizer's output, in order."""
    out = ParsedPairs()
    if not output:
        return out
    text = output.split(EOS, 1)[0]  # a model may go on with a new text after `</s>`
    head, *segments = text.split(QUE)
    if head.strip():
        out.dropped["noise"] += 1
    seen: set[str] = set()
    for n, segment in enumerate(segments):
        last = n == len(segments) - 1
        if END not in segment:
            out.dropped["unfinished" if last else "missing_end"] += 1
            continue
        body = segment.split(END, 1)[0]
        if ANS not in body:
            out.dropped["missing_answer"] += 1
            continue
        question, answer = (part.strip() for part in body.split(ANS, 1))
        if not question or not answer:
            out.dropped["empty"] += 1
            continue
        if _key(question) in seen:
            out.dropped["duplicate_question"] += 1
            continue
        seen.add(_key(question))
        out.pairs.append({"question": question, "answer": answer})
    return out


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def split_text(text: str, max_words: int) -> list[str]:
    """`text` in pieces of at most `max_words` words, cut at paragraph breaks, else at
    sentence ends, else between words; whitespace inside a piece is kept as it was
    except at the cuts."""
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    text = text.strip()
    if not text:
        return []
    if words(text) <= max_words:
        return [text]
    units: list[tuple[str, bool]] = []  # (unit, starts a paragraph)
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        first = True
        for sentence in (
            [paragraph] if words(paragraph) <= max_words else _SENTENCE.split(paragraph)
        ):
            tokens = sentence.split()
            for i in range(0, len(tokens), max_words) if len(tokens) > max_words else [0]:
                unit = sentence if len(tokens) <= max_words else " ".join(tokens[i : i + max_words])
                units.append((unit, first))
                first = False
    pieces: list[str] = []
    current = ""
    size = 0
    for unit, new_paragraph in units:
        n = words(unit)
        if current and size + n > max_words:
            pieces.append(current)
            current, size = "", 0
        current = f"{current}{chr(10) * 2 if new_paragraph else ' '}{unit}" if current else unit
        size += n
    if current:
        pieces.append(current)
    return pieces


def pretrain_text(text: str, pairs: Sequence[Pair]) -> str:
    """The text followed by its pairs, as one pre-training document."""
    qa = "\n\n".join(f"Question: {p['question']}\nAnswer: {p['answer']}" for p in pairs)
    return f"{text}\n\n{qa}" if qa else text


def conversation(text: str, pairs: Sequence[Pair]) -> list[dict[str, str]]:
    """The pairs as a conversation about the text: the first user turn carries the text."""
    messages: list[dict[str, str]] = []
    for n, pair in enumerate(pairs):
        question = f"{text}\n\n{pair['question']}" if n == 0 else pair["question"]
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": pair["answer"]})
    return messages
