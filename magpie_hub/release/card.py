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


def summarize(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    return {
        "min": min(values),
        "median": float(statistics.median(values)),
        "mean": round(statistics.fmean(values), 1),
        "max": max(values),
    }


def config_stats(tree: Path, name: str, data_files: list[str]) -> ConfigStats:
    """Read one config's shards from the release tree and compute its statistics."""
    tables = [pq.read_table(tree / f) for f in data_files]
    rows = [r for t in tables for r in t.to_pylist()]
    from datasets import Features

    features = Features.from_arrow_schema(pq.read_schema(tree / data_files[0]))
    stats = ConfigStats(
        name=name,
        rows=len(rows),
        data_files=data_files,
        features=features._to_yaml_list(),
        num_bytes=sum((tree / f).stat().st_size for f in data_files),
    )
    columns = set(features)
    for col in TEXT_COLUMNS:
        if col in columns:
            stats.lengths[col] = summarize([len(r[col] or "") for r in rows])
    if "conversation" in columns:
        turns = Counter(
            sum(1 for m in r["conversation"] or [] if m["role"] == "user") for r in rows
        )
        stats.turns = dict(sorted(turns.items()))
    if "system_prompt_key" in columns:
        keys = Counter(r["system_prompt_key"] or "(none)" for r in rows)
        stats.categories = dict(sorted(keys.items(), key=lambda kv: (-kv[1], kv[0])))
    for col in SCORE_COLUMNS:
        if col in columns:
            present = [float(r[col]) for r in rows if r[col] is not None]
            if present:
                stats.scores[col] = {
                    "rows": len(present),
                    "mean": round(statistics.fmean(present), 3),
                    "min": round(min(present), 3),
                    "max": round(max(present), 3),
                }
    stats.examples = [_shorten(r) for r in rows[:2]]
    return stats


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


def length_plot(tree: Path, name: str, data_files: list[str]) -> str | None:
    """A PNG histogram of the text columns' lengths; returns its repo path (None: no text)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in TEXT_COLUMNS if c in pq.read_schema(tree / data_files[0]).names]
    if not columns:
        return None
    table = [pq.read_table(tree / f, columns=columns) for f in data_files]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for col in columns:
        lengths = [len(v or "") for t in table for v in t.column(col).to_pylist()]
        ax.hist(lengths, bins=30, alpha=0.6, label=col)
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
