"""The wheel ships the library, the built-in plugins (with their starter configs) and the CLI."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).parent.parent


def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(REPO),
            "-w",
            str(tmp_path),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("magpie_hub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for plugin in (REPO / "plugins").glob("*.py"):
        assert f"magpie_hub_plugins/{plugin.name}" in names
    assert "magpie_hub_plugins/recipe_magpie.toml" in names
    assert "magpie_hub/py.typed" in names
    assert "magpie_hub_cards/card.md.jinja" in names  # the card template ships in the wheel
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "magpie-hub = magpie_hub.cli.main:main" in text


def _project() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_the_default_install_has_argilla_and_the_python_it_needs() -> None:
    """`review` on the default install (`make demo`) ended in a ModuleNotFoundError; the
    code imports tomllib, so Python 3.10 (which pyproject allowed) cannot run it."""
    project = _project()
    assert any(d.split(">")[0].split("[")[0] == "argilla" for d in project["dependencies"])
    assert project["requires-python"].startswith(">=3.11")
    uses_tomllib = [
        p for p in (REPO / "magpie_hub").rglob("*.py") if "import tomllib" in p.read_text()
    ]
    assert uses_tomllib, "nothing imports tomllib any more: the floor can be revisited"
