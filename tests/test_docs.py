"""The docs keep up with the code: CONTRIBUTING maps every module."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_contributing_maps_every_module() -> None:
    text = (REPO / "CONTRIBUTING.md").read_text()
    modules = sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "magpie_hub").rglob("*.py")
        if p.name not in {"__init__.py", "__main__.py"} and p.parent.name != "cli"
    )
    missing = [m for m in modules if f"`{m}`" not in text]
    assert modules and not missing, f"add these to CONTRIBUTING.md's module table: {missing}"
