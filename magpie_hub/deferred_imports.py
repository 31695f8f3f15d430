"""Modules and package `__init__`s that run on first use rather than at `import magpie_hub`.

Stand-ins (`DEFERRED`): until an attribute is read, `argilla` (the SDK behind distilabel's
Argilla steps) is a stand-in in `sys.modules`; the first read imports the real module,
which replaces the stand-in there, and the stand-in forwards to it from then on.
(`importlib.util.LazyLoader` cannot do this: `import argilla` reads `__spec__`, and that
alone loads it.) Two distilabel modules that bring `datasets` and pandas are stand-ins too,
handing out the functions a build never calls.

Package `__init__`s (`LAZY_PACKAGES`): distilabel's import every module of their package
(every step, task and model provider): `import distilabel.steps` took 0.7 s on 2 cores,
while a build needs a few base classes. The package is put in `sys.modules` with its
`__path__` and its `__init__` not yet run, so `import distilabel.steps.base` loads only
that module; the first name read from the package that is neither set nor a submodule
(a plugin's `from distilabel.steps import Step`) runs the `__init__`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

# module -> functions that importers take by name (`from m import f`) and a build never
# calls: the stand-in hands out a function that imports `m` when it is called
DEFERRED: dict[str, tuple[str, ...]] = {
    "argilla": (),
    "requests": (),  # distilabel's DAG imports it only to draw a pipeline (0.08 s)
    "distilabel.distiset": ("create_distiset",),  # these two bring `datasets` and pandas
    "distilabel.steps.generators.utils": ("make_generator_step",),
}
LAZY_PACKAGES = (  # parents first
    "distilabel.pipeline",
    "distilabel.models",
    "distilabel.models.llms",
    "distilabel.models.image_generation",
    "distilabel.steps",
    "distilabel.steps.tasks",
)


class _StandIn(types.ModuleType):
    """A module that imports the real one on the first attribute it is asked for."""

    def __init__(self, name: str, spec: importlib.machinery.ModuleSpec) -> None:
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
        spec = self.__spec__
        if attr == "__path__" and spec is not None and spec.submodule_search_locations is None:
            raise AttributeError(attr)  # `from module import f` asks whether it is a package
        if "_real_module" not in self.__dict__ and attr in DEFERRED[self.__name__]:
            return lambda *args, **kwargs: getattr(self._real(), attr)(*args, **kwargs)
        return getattr(self._real(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._real())


class _LazyPackage(types.ModuleType):
    """A package whose `__init__` runs on the first name read that it does not hold yet."""

    def _initialise(self) -> None:
        if not self.__dict__.get("_initialised"):
            self.__dict__["_initialised"] = True
            spec = self.__spec__
            assert spec is not None and spec.loader is not None
            spec.loader.exec_module(self)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr != "__all__":
            raise AttributeError(attr)
        if self.__dict__.get("_initialised"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        if importlib.util.find_spec(f"{self.__name__}.{attr}") is not None:
            return importlib.import_module(f"{self.__name__}.{attr}")  # `from pkg import sub`
        self._initialise()
        return getattr(self, attr)

    def __dir__(self) -> list[str]:
        self._initialise()
        return list(self.__dict__)


def defer_package_init(name: str) -> None:
    """Put package `name` in `sys.modules` with its `__init__` not yet run."""
    if name in sys.modules:
        return
    parent, _, child = name.rpartition(".")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _LazyPackage
    sys.modules[name] = module
    if parent:
        setattr(sys.modules[parent], child, module)


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


def import_distilabel_without_its_excepthook() -> None:
    """`import distilabel`, whose `__init__` installs rich's traceback hook with
    `show_locals=True` for the whole process: every uncaught exception then printed each
    frame's local variables (an HF token or Argilla key among them), and importing
    `rich.traceback` took 0.08 s. The hook is not installed; `rich.traceback` stays
    importable for whoever wants it."""
    if "distilabel" in sys.modules:
        return
    hook, real = sys.excepthook, sys.modules.get("rich.traceback")
    if real is None:
        quiet = types.ModuleType("rich.traceback")
        quiet.install = lambda **kwargs: None  # type: ignore[attr-defined]
        sys.modules["rich.traceback"] = quiet
    try:
        importlib.import_module("distilabel")
    except ImportError:
        pass
    finally:
        if real is None and sys.modules.get("rich.traceback") is quiet:
            del sys.modules["rich.traceback"]
        sys.excepthook = hook


def install() -> None:
    """Put the stand-ins in place (at `import magpie_hub`: a Ray step actor's class is
    ours, so its worker imports magpie_hub before distilabel)."""
    import_distilabel_without_its_excepthook()
    for name in LAZY_PACKAGES:
        defer_package_init(name)
    for name in DEFERRED:
        defer(name)


install()
