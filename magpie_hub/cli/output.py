"""One place for CLI output: data to stdout, progress, hints and errors to stderr."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

out = Console()
# Messages on stderr keep their lines whole: a path or a hint must stay copy-pasteable.
err = Console(stderr=True, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else on that line."""
    print(json.dumps(data, indent=2, default=str))
