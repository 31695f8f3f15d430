"""Modules that load on first use rather than at `import magpie_hub`.

`distilabel.steps` imports its Argilla steps, and with them the whole `argilla` SDK, at
import time; no build step uses it, and it was a fifth of the CLI's start-up. Until an
attribute is read, `argilla` is a stand-in in `sys.modules`; the first read imports the
real module, which replaces the stand-in there, and the stand-in forwards to it from then
on. (`importlib.util.LazyLoader` cannot do this: `import argilla` reads `__spec__` and
that alone loads it.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

DEFERRED = ("argilla",)


class _StandIn(types.ModuleType):
    """A module that imports the real one on the first attribute it is asked for."""

    def __init__(self, name: str, spec: Any) -> None:
        super().__init__(name)
        self.__spec__ = spec

    def _real(self) -> types.ModuleType:
        real = self.__dict__.get("_real_module")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__["_real_module"] = real
        return real

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._real(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._real())


def defer(name: str) -> None:
    """Put a stand-in for `name` in `sys.modules` unless it is imported or not installed."""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is not None:
        sys.modules[name] = _StandIn(name, spec)


def install() -> None:
    """Put the stand-ins in place: at `import magpie_hub`, and as a Ray worker's setup hook
    (its steps import distilabel before magpie_hub)."""
    for name in DEFERRED:
        defer(name)


install()
