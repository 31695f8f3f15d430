"""The dataset card: statistics and plots computed from the release's own Parquet files.

Every number in the card comes from the files in the release tree (the Parquet shards
and manifest.json that are pushed with it), never from memory of the run.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml
from jinja2 import Environment, StrictUndefined

from magpie_hub import __version__
from magpie_hub.registry import CardSection

TEXT_COLUMNS = ("instruction", "response", "response_base")
SCORE_COLUMNS = ("score", "score_base", "score_difference", "score_chosen", "score_rejected")
BASE_TAGS = ["synthetic", "magpie", "distilabel", "magpie-hub"]
EXAMPLE_CHARS = 600
READ_ROWS = 8192
"""Rows per record batch the statistics read."""


@dataclass
class ConfigStats:
    """What the card reports about one config (one set of Parquet shards)."""

    name: str
    rows: int
    data_files: list[str]
    features: list[dict[str, Any]]
    num_bytes: int
    lengths: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per text column: min, median, mean, max characters."""
    turns: dict[int, int] = field(default_factory=dict)
    """User turns per conversation -> rows."""
    categories: dict[str, int] = field(default_factory=dict)
    """system_prompt_key -> rows."""
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    text_lengths: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Per text column: every row's length (a numpy array), for the histogram."""


@dataclass
class CardContext:
    """Everything a card template or a plugin's card section may use."""

    tree: Path
    manifest: dict[str, Any]
    stats: dict[str, ConfigStats]
    repo_id: str
    tag: str | None
    images: dict[str, str] = field(default_factory=dict)
    """Config name -> repo path of its length histogram."""

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest.get("config") or {})


def summarize(values: Any) -> dict[str, float]:
    """min, median, mean and max of integers (a list or a numpy array)."""
    import numpy as np

    if not len(values):
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    ordered = np.sort(np.asarray(values, dtype=np.int64))
    n, mid = len(ordered), len(ordered) // 2
    median = float(ordered[mid]) if n % 2 else (int(ordered[mid - 1]) + int(ordered[mid])) / 2
    return {
        "min": int(ordered[0]),
        "median": median,
        "mean": round(int(ordered.sum()) / n, 1),  # as statistics.fmean: the exact sum / n
        "max": int(ordered[-1]),
    }


def config_stats(tree: Path, name: str, data_files: list[str]) -> ConfigStats:
    """Compute one config's statistics from its shards in the release tree, reading only
    the columns they need, a record batch at a time."""
    from datasets import Features

    schema = pq.read_schema(tree / data_files[0])
    features = Features.from_arrow_schema(schema)
    stats = ConfigStats(
        name=name,
        rows=0,
        data_files=data_files,
        features=features._to_yaml_list(),
        num_bytes=sum((tree / f).stat().st_size for f in data_files),
    )
    tally = _Tally([c for c in TEXT_COLUMNS if c in features], set(features))
    for f in data_files:
        with pq.ParquetFile(tree / f) as file:
            stats.rows += file.metadata.num_rows
            if len(stats.examples) < 2:
                stats.examples += _first_rows(file, 2 - len(stats.examples))
            if tally.columns:
                for batch in file.iter_batches(batch_size=READ_ROWS, columns=tally.columns):
                    tally.add(batch)
    tally.finish(stats)
    return stats


class _Tally:
    """What `config_stats` counts, batch by batch: text lengths, user turns, system-prompt
    keys, scores."""

    def __init__(self, texts: list[str], columns: set[str]) -> None:
        self.texts, self.scores = texts, [c for c in SCORE_COLUMNS if c in columns]
        self.turns = "conversation" in columns
        self.keys = "system_prompt_key" in columns
        self.columns = [*texts, *self.scores]
        self.columns += ["conversation"] * self.turns + ["system_prompt_key"] * self.keys
        self.lengths: dict[str, list[Any]] = {c: [] for c in texts}
        self.values: dict[str, list[Any]] = {c: [] for c in self.scores}
        self.turn_counts: Counter[int] = Counter()
        self.key_counts: Counter[str] = Counter()

    def add(self, batch: Any) -> None:
        import numpy as np
        import pyarrow.compute as pc

        for col in self.texts:
            lengths = pc.fill_null(pc.utf8_length(batch.column(col)), 0)
            self.lengths[col].append(lengths.to_numpy().astype(np.int32))
        for col in self.scores:
            self.values[col].append(batch.column(col).drop_null().cast("float64").to_numpy())
        if self.turns:
            convo = batch.column("conversation")
            user = pc.equal(pc.struct_field(pc.list_flatten(convo), "role"), "user")
            parents = pc.list_parent_indices(convo).to_numpy()
            users = parents[pc.fill_null(user, False).to_numpy(zero_copy_only=False)]
            per_row = np.bincount(users, minlength=len(convo))  # user turns of each row
            self.turn_counts.update(dict(zip(*np.unique(per_row, return_counts=True), strict=True)))
        if self.keys:
            for item in pc.value_counts(batch.column("system_prompt_key")).to_pylist():
                self.key_counts[item["values"] or "(none)"] += item["counts"]

    def finish(self, stats: ConfigStats) -> None:
        import numpy as np

        for col, parts in self.lengths.items():
            stats.text_lengths[col] = np.concatenate(parts) if parts else np.zeros(0, np.int32)
            stats.lengths[col] = summarize(stats.text_lengths[col])
        if self.turns:
            stats.turns = {int(k): int(n) for k, n in sorted(self.turn_counts.items())}
        if self.keys:
            keys = self.key_counts
            stats.categories = dict(sorted(keys.items(), key=lambda kv: (-kv[1], kv[0])))
        for col, parts in self.values.items():
            present = np.concatenate(parts).tolist() if parts else []
            if present:
                stats.scores[col] = {
                    "rows": len(present),
                    "mean": round(statistics.fmean(present), 3),
                    "min": round(min(present), 3),
                    "max": round(max(present), 3),
                }


def _first_rows(file: Any, n: int) -> list[dict[str, Any]]:
    """The first `n` rows of a Parquet file, shortened for display."""
    for batch in file.iter_batches(batch_size=n):
        return [_shorten(r) for r in batch.to_pylist()]
    return []


def _shorten(row: dict[str, Any]) -> dict[str, Any]:
    """A row for display: long strings cut, the generation settings left out."""

    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > EXAMPLE_CHARS:
            return value[:EXAMPLE_CHARS] + " [...]"
        if isinstance(value, list):
            return [cut(v) for v in value]
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        return value

    return {k: cut(v) for k, v in row.items() if k not in ("gen_config", "pre_query_template")}


def length_plot(
    tree: Path, name: str, data_files: list[str], lengths: dict[str, Any] | None = None
) -> str | None:
    """A PNG histogram of the text columns' lengths; returns its repo path (None: no text).
    `lengths` (`ConfigStats.text_lengths`) saves reading the files again."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in TEXT_COLUMNS if c in pq.read_schema(tree / data_files[0]).names]
    if not columns:
        return None
    if lengths is None:
        lengths = config_stats(tree, name, data_files).text_lengths
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for col in columns:
        values, counts = np.unique(lengths[col], return_counts=True)  # the same bars as all
        ax.hist(values.astype(np.int64), bins=30, weights=counts, alpha=0.6, label=col)
    ax.set_xlabel("characters")
    ax.set_ylabel("rows")
    ax.set_title(f"Text lengths, config {name}")
    ax.legend()
    fig.tight_layout()
    path = f"images/{name}-lengths.png"
    (tree / "images").mkdir(exist_ok=True)
    # No software or date metadata: the same data gives the same bytes (no empty commits).
    fig.savefig(tree / path, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if rows < limit:
            return label
    return "100K<n<1M" if rows < 1_000_000 else "n>1M"


def card_metadata(ctx: CardContext) -> dict[str, Any]:
    """The YAML header: what the Hub and `datasets.load_dataset` read."""
    card = ctx.config.get("card") or {}
    recipe = ctx.manifest.get("recipe", "magpie")
    total = sum(s.rows for s in ctx.stats.values())
    meta: dict[str, Any] = {
        "license": card.get("license", "other"),
        "language": card.get("language", ["en"]),
        "task_categories": card.get("task_categories", ["text-generation"]),
        "size_categories": [size_category(total)],
        "tags": sorted({*BASE_TAGS, recipe, *card.get("tags", [])}),
    }
    if card.get("pretty_name"):
        meta["pretty_name"] = card["pretty_name"]
    meta["configs"] = [
        {
            "config_name": s.name,
            "data_files": [{"split": "train", "path": f"data/{s.name}/*.parquet"}],
            **({"default": True} if i == 0 else {}),
        }
        for i, s in enumerate(ctx.stats.values())
    ]
    meta["dataset_info"] = [
        {
            "config_name": s.name,
            "features": s.features,
            "splits": [{"name": "train", "num_bytes": s.num_bytes, "num_examples": s.rows}],
        }
        for s in ctx.stats.values()
    ]
    return meta


def render_card(ctx: CardContext, sections: list[CardSection]) -> str:
    """The card's Markdown: YAML metadata, then the template in dataset_cards/ with sections."""
    env = Environment(
        undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    # A value inside a Markdown table cell: JSON, with pipes escaped (chat markup has them).
    env.filters["cell"] = lambda v: json.dumps(v, ensure_ascii=False).replace("|", "\\|")
    template = env.from_string(
        (files("magpie_hub_cards") / "card.md.jinja").read_text(encoding="utf-8")
    )
    extra = []
    for section in sorted(sections, key=lambda s: (s.order, s.name)):
        body = section.render(ctx)
        if body:
            extra.append({"title": section.title, "body": body.strip()})
    header = yaml.safe_dump(card_metadata(ctx), sort_keys=False, allow_unicode=True)
    body = template.render(
        ctx=ctx,
        m=ctx.manifest,
        config=ctx.config,
        stats=list(ctx.stats.values()),
        sections=extra,
        version=__version__,
        summary=(ctx.config.get("card") or {}).get("summary"),
    )
    return f"---\n{header}---\n\n{body}"
