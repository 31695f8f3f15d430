"""Build folders for curation tests, written through BuildFolder (no generation needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

ROWS = [
    "How do I sort a list of numbers in Python?",
    "How do I sort a list of numbers in Python?",  # exact duplicate of row 0
    "How can I sort a list of numbers in Python?",  # near duplicate of row 0
    "Write a short poem about the sea at night.",
    "What is the capital city of France?",
    "Explain photosynthesis to a ten-year-old child.",
    "Quelle est la meilleure façon d'apprendre le français rapidement ?",
    "List three healthy breakfast ideas:",
]


def make_build(root: Path, instructions: list[str] | None = None, **extra: Any) -> Path:
    """A finished single-turn build of `instructions` (default ROWS) with simple answers."""
    import pyarrow as pa
    from datasets import Features, Value

    from magpie_hub.build import BuildFolder

    instructions = instructions if instructions is not None else ROWS
    features = Features(
        {
            "uuid": Value("string"),
            "instruction": Value("string"),
            "response": Value("string"),
            "conversation": [{"role": Value("string"), "content": Value("string")}],
            "model": Value("string"),
            **{k: Value("string") for k in extra},
        }
    )
    rows = []
    for i, text in enumerate(instructions):
        answer = f"Answer number {i}: " + "details " * (i + 1)
        rows.append(
            {
                "uuid": f"row-{i:04d}",
                "instruction": text,
                "response": answer,
                "conversation": [
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": answer},
                ],
                "model": "test/model",
                **{k: v[i] for k, v in extra.items()},
            }
        )
    folder = BuildFolder(root)
    folder.write_shards(pa.Table.from_pylist(rows, schema=features.arrow_schema))
    folder.write_manifest(
        {
            **generated_manifest(len(rows)),
            "features": features.to_dict(),
            "views": {},
            "data_files": folder.data_files(),
        }
    )
    return root


def generated_manifest(rows: int) -> dict[str, Any]:
    """What `magpie-hub generate` puts in a manifest besides data, views and curation."""
    from magpie_hub.config import redacted_dump
    from magpie_hub.plugins import get_registry

    return {
        "recipe": "magpie",
        "fingerprint": "test",
        "status": "complete",
        "config": redacted_dump(get_registry().recipe("magpie").config_model()),
        "versions": {},
        "model": {"id": "test/model", "engine": "test", "file": "x", "sha256": "0"},
        "pre_query_template": "<|user|>",
        "seed": 42,
        "counts": {"requested": rows, "generated": rows, "dropped": 0, "dropped_by_reason": {}},
    }


def tree_digest(root: Path) -> str:
    """A hash of every file under `root` (paths and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def curate_config(path: Path, taggers: list[str], extra: str = "", judge: str = "") -> Path:
    listed = ", ".join(f'"{t}"' for t in taggers)
    path.write_text(
        f"[curate]\ntaggers = [{listed}]\nbatch_size = 3\n{extra}\n{judge}", encoding="utf-8"
    )
    return path
