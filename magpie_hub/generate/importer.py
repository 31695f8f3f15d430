"""`import`: a build folder from instruction data made elsewhere, ready to card, push,
review and curate like a generated build.

A source is a local JSON-lines (.jsonl/.json), Parquet or CSV file, or a Hugging Face Hub
dataset id. Its rows become the columns of FEATURES: `instruction` and `response`, the
`conversation` as {role, content} messages, `system_prompt`, `model`, and a stable `uuid`.
Rows that hold no usable exchange are dropped and counted by reason, like generated ones.

The whole source is read and checked before the build folder is touched: a source that
cannot be used, or a folder that may not be replaced, leaves the folder as it was.
"""

from __future__ import annotations

import json
import platform
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from magpie_hub import __version__
from magpie_hub.build import BuildFolder
from magpie_hub.config import CardConfig
from magpie_hub.errors import BuildFolderError, ImportSourceError
from magpie_hub.generate.import_sources import CONVERSATION_COLUMNS, SOURCE_HINT, Rows, resolve

RECIPE = "import"
ROLES = {"system": "system", "human": "user", "gpt": "assistant", "model": "assistant"}
"""ShareGPT's roles (and Gemini's `model`) as OpenAI's; `user` and `assistant` stay."""
ACCEPTED = (
    "instruction + response, or one conversation column: conversation or messages "
    "({role, content} messages) or conversations ({from, value} messages)"
)
UUID_NAMESPACE = uuid.UUID("5f0d7c1e-9a43-4c55-8f0e-6d2b7a1c3e90")


def features() -> Any:
    """The `datasets.Features` of an imported build's rows."""
    from datasets import Features, Value

    return Features(
        {
            "uuid": Value("string"),
            "instruction": Value("string"),
            "response": Value("string"),
            "conversation": [{"role": Value("string"), "content": Value("string")}],
            "system_prompt": Value("string"),
            "model": Value("string"),
        }
    )


@dataclass(frozen=True)
class ImportResult:
    out: Path
    source: str
    """As given (the manifest names a file by its name only)."""
    manifest: dict[str, Any]
    previous: str
    """What --out held: "none", "same source" (imported again) or "replaced" (--force)."""


def import_build(
    source: str,
    out: Path,
    *,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    force: bool = False,
) -> ImportResult:
    """Make the build folder `out` from `source` (a file or a Hub dataset id).

    An `out` that holds anything but an earlier import of the same source is refused
    unless `force`, which replaces it.
    """
    src = resolve(source, config=config, split=split, revision=revision)
    folder = BuildFolder(out)
    with folder.writer():
        return _write_import(
            src, folder, force, {"config": config, "split": split, "revision": revision}
        )


def _write_import(
    src: Any, folder: BuildFolder, force: bool, asked: dict[str, Any]
) -> ImportResult:
    previous = _check_target(folder, src.fingerprint, force=force)
    columns, read = src.load()
    converted = _convert(src.name, src.fingerprint, columns, read)
    rows, dropped = converted.rows, converted.dropped

    import pyarrow as pa

    table = pa.Table.from_pylist(rows, schema=features().arrow_schema)
    kept: dict[str, Any] = {}
    if previous == "same source":
        kept = folder.read_manifest() or {}
    elif previous == "replaced":
        folder.clear()
    folder.write_shards(table)
    models = Counter(r["model"] for r in rows if r["model"])
    now = datetime.now(UTC).isoformat(timespec="seconds")
    # The card settings as a generated build has them; a publisher's edits survive re-imports.
    card = {**CardConfig().model_dump(), **((kept.get("config") or {}).get("card") or {})}
    manifest = {
        "recipe": RECIPE,
        "fingerprint": src.fingerprint,
        "status": "complete",
        "created": kept.get("created") or now,
        "updated": now,
        "source": {**src.record, "columns_read": converted.columns_read, "uuid": converted.uuid},
        "config": {
            "recipe": RECIPE,
            "source": src.record.get("repo_id") or src.record["path"],
            "config": asked["config"],
            "split": asked["split"] if src.record["kind"] == "hub" else None,
            "revision": asked["revision"],
            "card": card,
        },
        "versions": {
            "magpie-hub": __version__,
            "datasets": metadata.version("datasets"),
            "pyarrow": metadata.version("pyarrow"),
            "python": platform.python_version(),
        },
        "model": {
            "id": models.most_common(1)[0][0] if models else "unknown",
            "engine": RECIPE,
            "models": dict(models.most_common()),
        },
        "counts": {
            "requested": converted.total,
            "generated": len(rows),
            "dropped": sum(dropped.values()),
            "dropped_by_reason": dict(sorted(dropped.items())),
            "pending": 0,
        },
        "features": features().to_dict(),
        "views": {k: v for k, v in kept.get("views", {}).items() if folder.view_dir(k).is_dir()},
        "data_files": folder.data_files(),
    }
    folder.write_manifest(manifest)
    return ImportResult(out=folder.root, source=src.name, manifest=manifest, previous=previous)


# --- the target folder ------------------------------------------------------------------


def _check_target(folder: BuildFolder, fingerprint: str, *, force: bool) -> str:
    """What `out` holds now ("none", "same source", "replaced"); raises if it may not be
    written. Reads only: the folder changes once the source has been read and checked."""
    root = folder.root
    if root.exists() and not root.is_dir():
        raise BuildFolderError(root, "is a file, not a folder", hint="Choose another --out.")
    if not root.exists() or not any(root.iterdir()):
        return "none"
    try:
        manifest = folder.read_manifest()
    except BuildFolderError:
        if not force:
            raise
        manifest = None
    if manifest and (manifest.get("recipe"), manifest.get("fingerprint")) == (RECIPE, fingerprint):
        return "same source"
    if force:
        return "replaced"
    if manifest is None:
        message = "exists, is not empty and holds no magpie-hub build"
    elif manifest.get("recipe") == RECIPE:
        message = f"holds an import of another source ({_describe(manifest)})"
    else:
        message = f"holds a build of recipe {manifest.get('recipe')!r}, not this import"
    raise BuildFolderError(
        root, message, hint="Choose another --out, or pass --force to replace what is there."
    )


def _describe(manifest: dict[str, Any]) -> str:
    source = manifest.get("source") or {}
    return str(source.get("repo_id") or source.get("path") or "unknown")


# --- rows ---------------------------------------------------------------------------------


@dataclass
class _Rows:
    rows: list[dict[str, Any]]
    """The kept rows, with FEATURES' columns."""
    columns_read: list[str]
    dropped: Counter[str]
    total: int
    uuid: str
    """"source column" (the source's unique `uuid`s) or "derived" (uuid5 of fingerprint, row)."""


def _convert(source: str, fingerprint: str, columns: list[str], read: Rows) -> _Rows:
    if not columns:
        raise ImportSourceError(source, "holds no rows", hint=SOURCE_HINT)
    conversation = next((c for c in CONVERSATION_COLUMNS if c in columns), None)
    if conversation:
        wanted = [conversation]
    elif "instruction" in columns and "response" in columns:
        wanted = ["instruction", "response", *(["system_prompt"] * ("system_prompt" in columns))]
    else:
        raise ImportSourceError(
            source,
            f"no usable columns; found: {', '.join(columns) or '(none)'}; accepted: {ACCEPTED}",
            columns=columns,
            hint="Rename the columns to one of the accepted layouts (e.g. with `datasets` "
            "or pandas), then import again.",
        )
    wanted += [c for c in ("uuid", "model") if c in columns]
    result = _Rows([], wanted, Counter(), 0, "derived")
    ids: list[Any] = []
    for index, raw in enumerate(read(wanted)):
        result.total += 1
        ids.append(raw.get("uuid") if raw.get("uuid") != "" else None)  # CSV: "" is no id
        if conversation:
            messages = _messages(raw[conversation], conversation, index, source, columns)
        else:
            messages = _pair(raw, index, source, columns)
        row = _exchange(messages)
        if isinstance(row, str):
            result.dropped[row] += 1
            continue
        model = raw.get("model")
        row |= {"model": str(model) if model not in (None, "") else None, "uuid": index}
        result.rows.append(row)
    if not result.rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(result.dropped.items()))
        raise ImportSourceError(
            source,
            f"none of its {result.total} rows is usable"
            + (f" (dropped: {reasons})" if reasons else ""),
            columns=columns,
            hint="Each row needs a non-empty user message and a non-empty answer to it.",
        )
    if "uuid" in columns and None not in ids and len({str(i) for i in ids}) == len(ids):
        result.uuid = "source column"
    for row in result.rows:
        index = row["uuid"]
        own = result.uuid == "source column"
        row["uuid"] = str(
            ids[index] if own else uuid.uuid5(UUID_NAMESPACE, f"{fingerprint}/{index}")
        )
    return result


def _bad(source: str, column: str, index: int, why: str, columns: list[str]) -> ImportSourceError:
    return ImportSourceError(
        source,
        f"column {column!r} has a bad shape at row index {index} (counting from 0): {why}",
        columns=columns,
        hint=f"`{column}` must hold a list of {{role, content}} (OpenAI) or {{from, value}} "
        "(ShareGPT) messages per row; `instruction` and `response` hold text.",
    )


def _messages(
    value: Any, column: str, index: int, source: str, columns: list[str]
) -> list[dict[str, str]]:
    """One row's conversation as {role, content} messages, ShareGPT roles mapped."""
    if isinstance(value, str):  # e.g. a CSV cell holding the messages as JSON
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _bad(source, column, index, "text that is not a JSON list", columns) from None
    if value is None:
        return []
    if not isinstance(value, list):
        why = f"not a list (got {type(value).__name__})"
        raise _bad(source, column, index, why, columns)
    messages = []
    for n, message in enumerate(value):
        if not isinstance(message, dict):
            why = f"message {n} is not an object (got {type(message).__name__})"
            raise _bad(source, column, index, why, columns)
        if message.get("role") is not None:
            role, content = message["role"], message.get("content")
        elif message.get("from") is not None:
            role, content = message["from"], message.get("value")
        else:
            why = f"message {n} has neither `role` nor `from`"
            raise _bad(source, column, index, why, columns)
        if not isinstance(role, str) or not isinstance(content, str | None):
            why = f"message {n} has a role or content that is not text"
            raise _bad(source, column, index, why, columns)
        role = role.lower()
        messages.append({"role": ROLES.get(role, role), "content": content or ""})
    return messages


def _pair(raw: dict[str, Any], index: int, source: str, columns: list[str]) -> list[dict[str, str]]:
    """The messages of an instruction/response row (a system prompt first, if any)."""
    texts = {}
    for column in ("system_prompt", "instruction", "response"):
        value = raw.get(column)
        if not isinstance(value, str | None):
            raise ImportSourceError(
                source,
                f"column {column!r} holds {type(value).__name__}, not text, at row index "
                f"{index} (counting from 0)",
                columns=columns,
                hint="`instruction`, `response` and `system_prompt` must hold text.",
            )
        texts[column] = value or ""
    system = [{"role": "system", "content": texts["system_prompt"]}] * bool(texts["system_prompt"])
    return [
        *system,
        {"role": "user", "content": texts["instruction"]},
        {"role": "assistant", "content": texts["response"]},
    ]


def _exchange(messages: list[dict[str, str]]) -> dict[str, Any] | str:
    """instruction (the first user message), response (the first answer after it), the
    conversation and its system prompt; or the reason the row is dropped."""
    user = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    if user is None:
        return "no_user_turn"
    answer = next((m for m in messages[user + 1 :] if m["role"] == "assistant"), None)
    if answer is None:
        return "no_assistant_turn"
    if not messages[user]["content"].strip():
        return "empty_instruction"
    if not answer["content"].strip():
        return "empty_response"
    first = messages[0]
    return {
        "instruction": messages[user]["content"],
        "response": answer["content"],
        "conversation": messages,
        "system_prompt": (first["content"] or None) if first["role"] == "system" else None,
    }
