"""Results computed from a model file (its SHA-256, its GGUF metadata), kept across runs.

Hashing a 40 GB model takes minutes and walking a GGUF header ~0.1 s; both depend only on
the file. Each result is one JSON file in `model_cache_dir()`, keyed by the file's
identity (path, size, mtime, ctime, inode). A cache that cannot be read or written is
skipped, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")


def model_cache_dir() -> Path:
    """$MAGPIE_HUB_CACHE_DIR, else ${XDG_CACHE_HOME:-~/.cache}/magpie-hub, + model-files/."""
    root = os.environ.get("MAGPIE_HUB_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "magpie-hub"
    )
    return Path(root, "model-files")


def _file_identity(path: Path) -> list[Any]:
    """The resolved path, and size, mtime, ctime and inode of the file (of each file, in
    the order `file_sha256` hashes them, for a folder). ctime catches a rewrite that
    restores the old mtime (`touch -d`, `rsync --inplace -t`)."""
    root = path.resolve()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    stats = [(str(f.relative_to(root)), f.stat()) for f in files]
    return [
        str(root),
        [(n, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino) for n, s in stats],
    ]


def cached_file_result(path: Path, kind: str, compute: Callable[[], _T]) -> _T:
    """`compute()`, kept as JSON in `model_cache_dir()` under `kind` and the identity of
    `path` (a file or a folder, see `_file_identity`). A cache that cannot be read or
    written is skipped; a result that a JSON round trip changes, or one computed while
    the file changed, is not kept."""
    try:
        key = json.dumps([kind, _file_identity(path)])
        entry = model_cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
    except (OSError, RuntimeError):  # RuntimeError: no home folder
        return compute()
    try:
        stored = json.loads(entry.read_text(encoding="utf-8"))
        if stored["key"] == key:
            return stored["value"]
    except (OSError, ValueError, TypeError, KeyError):
        pass  # missing, unreadable or corrupt: recompute and overwrite it
    value = compute()
    try:
        text = json.dumps({"key": key, "value": value})
        if json.loads(text)["value"] == value and json.dumps([kind, _file_identity(path)]) == key:
            _write_atomically(entry, text)
    except (OSError, ValueError, TypeError):
        pass
    return value


def _write_atomically(target: Path, text: str) -> None:
    """Write `text` to a temporary file beside `target`, then rename it over `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
