"""Card sections for curated builds (`magpie-hub curate`): tags, filter funnel, diversity.

Taggers, judge and funnel come from manifest.json; every distribution is counted from the
`default` config's Parquet in the release tree, a record batch at a time. A build without
`curate` in its manifest gets none of these sections, so its card is unchanged.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow.parquet as pq

from magpie_hub.curate.labels import CATEGORIES, DIFFICULTY, QUALITY, SAFETY
from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import CardSection
from magpie_hub.release.card import READ_ROWS, CardContext

CATEGORY_PLOT = "images/task-categories.png"
REWARD_PLOT = "images/instruct-reward.png"
REWARD_COLUMNS = ("instruct_reward", "base_reward", "reward_difference")
NEAR_DUP = ("min_similar_uuid", "repeat_count")
VOCABULARIES = {
    "input_quality": QUALITY,
    "difficulty": DIFFICULTY,
    "task_category": CATEGORIES,
    "safety": SAFETY,
}
UNTAGGED = "(untagged)"
TOP = 20


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The verb-object heuristic (no model): an instruction that starts with one of VERBS, or
# with a LEADS phrase ("how do I", "can you") and then any word, has that word as its verb;
# its object is the first later word that is not in SKIP (determiners, pronouns,
# prepositions, small numbers, "please", common adjectives such as "short").
VERBS = _set(
    "write explain create list describe give generate summarize summarise translate find "
    "calculate compare suggest provide design help tell make analyze analyse rewrite name "
    "identify classify convert edit outline draft compose develop define show solve plan "
    "recommend implement build evaluate imagine brainstorm paraphrase correct improve "
    "determine estimate predict prove simplify sort fix debug check review discuss propose "
    "construct come"
)
LEADS = tuple(
    tuple(p.split())
    for p in (
        "how do i", "how can i", "how should i", "how do you", "how to", "can you", "could you",
        "would you", "will you", "can i", "i want you to", "i need you to", "i need to",
        "i want to", "please",
    )
)  # fmt: skip
SKIP = _set(
    "a an the this that these those some any all each every another such what which my your "
    "his her its our their me you him us them it i we they one two three four five six seven "
    "eight nine ten few several more most of to for in on at about with from by into onto "
    "up out down over under between through as like please briefly quickly short brief long "
    "simple detailed good best new creative quick small comprehensive basic funny healthy"
)


def words(text: str | None) -> list[str]:
    """Lowercased words of `text`, punctuation stripped (inner apostrophes kept)."""
    return re.findall(r"[^\W_]+(?:'[^\W_]+)*", (text or "").lower())


def verb_object(text: str | None) -> tuple[str, str] | None:
    """(verb, object) of an imperative or "how do I/can you" instruction, else None."""
    ws = words(text)
    lead = next((p for p in LEADS if tuple(ws[: len(p)]) == p), None)
    if lead is not None:
        ws = ws[len(lead) :]
        while ws and ws[0] == "please":
            ws = ws[1:]
    elif not ws or ws[0] not in VERBS:
        return None
    if not ws:
        return None
    obj = next((w for w in ws[1:] if w not in SKIP and not w.isdigit()), None)
    return (ws[0], obj) if obj else None


def _pct(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "0.0%"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    cell = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(cell, line)) + " |" for line in [header, *rows]]
    return "\n".join([lines[0], "|---" * len(header) + "|", *lines[1:]])


def _have(ctx: CardContext, wanted: list[str]) -> list[str]:
    """The `wanted` columns the default config has."""
    stats = ctx.stats.get("default")
    if stats is None or not stats.data_files:
        return []
    have = set(pq.read_schema(ctx.tree / stats.data_files[0]).names)
    return [c for c in wanted if c in have]


def _batches(ctx: CardContext, columns: list[str]) -> Iterator[Any]:
    """The default config's `columns` (all of them present), a record batch at a time."""
    for f in ctx.stats["default"].data_files:
        with pq.ParquetFile(ctx.tree / f) as file:
            yield from file.iter_batches(batch_size=READ_ROWS, columns=columns)


def _count_table(column: str, counts: Counter[Any], labels: list[str] | None, top: int = 0) -> str:
    """Rows per label (in vocabulary order, or by count), untagged rows (None) last, with
    shares; `counts` is rows per value."""
    total = sum(counts.values())
    counts = Counter({k: n for k, n in counts.items() if k is not None})
    untagged = total - sum(counts.values())
    if labels is None:
        order = sorted(counts, key=lambda k: (-counts[k], k))[: top or None]
    else:
        order = [*labels, *sorted(set(counts) - set(labels))]
    rows = [[k, counts[k], _pct(counts[k], total)] for k in order]
    if untagged:
        rows.append([UNTAGGED, untagged, _pct(untagged, total)])
    return _table([column, "rows", "share"], rows)


def _plot(ctx: CardContext, path: str, title: str, xlabel: str, draw: Callable[[Any], Any]) -> str:
    """Draw one chart into the release tree; returns its Markdown image link."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    draw(ax)
    ax.set(title=title, xlabel=xlabel)
    fig.tight_layout()
    (ctx.tree / "images").mkdir(exist_ok=True)
    # No software or date metadata: the same data gives the same bytes (no empty commits).
    fig.savefig(ctx.tree / path, format="png", metadata={"Software": None})
    plt.close(fig)
    return f"![{title}]({path})"


def _judge_note(curate: dict[str, Any]) -> str:
    judge = curate.get("judge")
    if not judge:
        return "No judge model ran: the tags above were computed without one."
    from magpie_hub.plugins import get_registry

    known = get_registry().taggers
    judged = [t for t in curate["taggers"] if t in known and known[t].uses_judge]
    note = (
        f"The judge tags ({', '.join(judged) or 'none'}) come from the model `{judge['id']}` "
        f"(engine `{judge.get('engine')}`, file `{judge.get('file')}`, sha256 "
        f"`{str(judge.get('sha256'))[:16]}`): they are that model's opinion, not a human's."
    )
    if "SmolLM2-135M" in str(judge["id"]):
        note += (
            " It is the embedded SmolLM2-135M, a very small and weak judge: treat its labels "
            "as rough guesses and check a sample before filtering on them."
        )
    return note


class _Tags:
    """What the curation section counts in the default config, batch by batch."""

    def __init__(self, have: list[str]) -> None:
        self.labels: dict[str, Counter[Any]] = {
            c: Counter() for c in [*VOCABULARIES, "language"] if c in have
        }
        self.rewards: dict[str, list[Any]] = {c: [] for c in REWARD_COLUMNS if c in have}
        self.models: set[str] = set()
        self.dups = all(c in have for c in (*NEAR_DUP, "uuid"))
        self.rows = self.later = self.grouped = 0

    def add(self, batch: Any) -> None:
        self.rows += batch.num_rows
        for column, counts in self.labels.items():
            counts.update(batch.column(column).to_pylist())
        for column, parts in self.rewards.items():
            parts.append(batch.column(column).drop_null().cast("float64").to_numpy())
        if "reward_model" in batch.schema.names:
            self.models.update(m for m in batch.column("reward_model").to_pylist() if m)
        if self.dups:
            uuids, similar = batch.column("uuid").to_pylist(), batch.column("min_similar_uuid")
            pairs = zip(uuids, similar.to_pylist(), strict=True)
            self.later += sum(1 for u, s in pairs if s is not None and s != u)
            self.grouped += sum(1 for n in batch.column("repeat_count").to_pylist() if n)

    def present(self) -> dict[str, list[float]]:
        """Per reward column, its values that are set (columns with none left out)."""
        import numpy as np

        values = {c: np.concatenate(p).tolist() if p else [] for c, p in self.rewards.items()}
        return {c: v for c, v in values.items() if v}


def curation(ctx: CardContext) -> str | None:
    curate = ctx.manifest.get("curate")
    if not curate:
        return None
    rows = []
    for name, t in curate.get("taggers", {}).items():
        errors = ", ".join(f"{k}: {n}" for k, n in t.get("errors_by_reason", {}).items())
        rows.append([name, ", ".join(t["columns"]), t["tagged"], errors or "-"])
    header = ["tagger", "columns", "rows tagged", "errors by reason"]
    parts = [_table(header, rows), _judge_note(curate)]
    wanted = ["uuid", *VOCABULARIES, "language", *REWARD_COLUMNS, "reward_model", *NEAR_DUP]
    have = _have(ctx, wanted)
    tags = _Tags(have)
    for batch in _batches(ctx, have) if have else ():
        tags.add(batch)
    for column, labels in VOCABULARIES.items():
        if column in tags.labels:
            counts = tags.labels[column]
            parts.append(f"Rows per `{column}`:\n\n" + _count_table(column, counts, labels))
        if column in tags.labels and column == "task_category":
            parts.append(_category_plot(ctx, tags.labels[column]))
    if "language" in tags.labels:
        langs = tags.labels["language"]
        head = f"Rows per `language` (top 10 of {len(set(langs) - {None})}):\n\n"
        parts.append(head + _count_table("language", langs, None, top=10))
    parts += [p for p in (_rewards(ctx, tags), _near_dups(ctx, tags)) if p]
    return "\n\n".join(parts)


def _category_plot(ctx: CardContext, values: Counter[Any]) -> str:
    counts = Counter({k: n for k, n in values.items() if k is not None})
    labels = [*CATEGORIES, *sorted(set(counts) - set(CATEGORIES))]
    bars = lambda ax: (ax.barh(labels, [counts[k] for k in labels]), ax.invert_yaxis())  # noqa: E731
    return _plot(ctx, CATEGORY_PLOT, "Task categories, config default", "rows", bars)


def _rewards(ctx: CardContext, tags: _Tags) -> str | None:
    present = tags.present()
    if not present:
        return None
    models = sorted(tags.models)
    rows = [
        [c, len(v), *(f"{x:.3f}" for x in (statistics.fmean(v), min(v), max(v)))]
        for c, v in present.items()
    ]
    lines = [f"Rewards (model {', '.join(f'`{m}`' for m in models) or 'unknown'}):", ""]
    lines.append(_table(["reward column", "rows", "mean", "min", "max"], rows))
    if rewards := present.get("instruct_reward"):
        title = "Reward of the responses, config default"
        hist = lambda ax: (ax.hist(rewards, bins=30), ax.set_ylabel("rows"))  # noqa: E731
        lines += ["", _plot(ctx, REWARD_PLOT, title, "instruct_reward", hist)]
    return "\n".join(lines)


def _near_dups(ctx: CardContext, tags: _Tags) -> str | None:
    if not tags.dups:
        return None
    total, later, grouped = tags.rows, tags.later, tags.grouped
    near_dup = (ctx.manifest["curate"].get("config") or {}).get("near_dup") or {}
    below = (
        f" (embedding distance below {near_dup['threshold']})" if near_dup.get("threshold") else ""
    )
    rows = [
        ["later copies, removed by first_of_group", later, _pct(later, total)],
        ["in a duplicate group (repeat_count > 0)", grouped, _pct(grouped, total)],
    ]
    return f"Near-duplicates{below}:\n\n" + _table(["near-duplicates", "rows", "share"], rows)


def filter_funnel(ctx: CardContext) -> str | None:
    flt = ctx.manifest.get("filter")
    if not ctx.manifest.get("curate") or not flt:
        return None
    kept = ctx.stats["filtered"].rows if "filtered" in ctx.stats else 0
    preset = f"preset `{flt['preset']}`" if flt.get("preset") else "no preset"
    extra = [f"{k} {flt[k]}" for k in ("top_n", "shuffle_seed") if flt.get(k) is not None]
    steps = [[s["step"], s["rows_after"], s["removed"]] for s in flt["funnel"]]
    return (
        f"Config `filtered` holds {kept} rows: the curated rows after the filter "
        f"({', '.join([preset, *extra])}), step by step:\n\n"
        + _table(["step", "rows after", "removed"], steps)
    )


def diversity(ctx: CardContext) -> str | None:
    if not ctx.manifest.get("curate") or not _have(ctx, ["instruction"]):
        return None
    texts, leads, pairs = 0, Counter[str](), Counter[tuple[str, str]]()
    for batch in _batches(ctx, ["instruction"]):
        for text in batch.column("instruction").to_pylist():
            texts += 1
            if ws := words(text):
                leads[ws[0]] += 1
            if pair := verb_object(text):
                pairs[pair] += 1
    if not texts:
        return None
    matched = sum(pairs.values())
    top_pairs = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return "\n".join(
        [
            f"{len(leads)} distinct leading words in {texts} instructions (lowercased, "
            "punctuation stripped). The most common:",
            "",
            _count_table("leading word", leads, None, top=TOP),
            "",
            f"Verb-object pairs of {matched} instructions ({_pct(matched, texts)}), found "
            "without a model: the first word if it is a common instruction verb (write, "
            'explain, list, ...), or the word after "how do I", "can you" and similar; the '
            "object is the next word that is not a determiner, pronoun, preposition, small "
            "number or common adjective.",
            "",
            _table(["verb", "object", "rows"], [[v, o, n] for (v, o), n in top_pairs]),
        ]
    )


SECTIONS = (
    ("curation", "Curation", curation, 20),
    ("filter-funnel", "Filter funnel", filter_funnel, 21),
    ("instruction-diversity", "Instruction diversity", diversity, 22),
)


@hookimpl
def register_card_sections(register: Callable[[CardSection], None]) -> None:
    for name, title, render, order in SECTIONS:
        register(CardSection(name=name, title=title, render=render, order=order))
