"""Load plugins (built-ins, then the `magpie_hub` entry points); collect what they register."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from typing import Any

import pluggy

from magpie_hub import __version__, hookspecs
from magpie_hub.registry import KINDS, Registry

ENTRY_POINT_GROUP = "magpie_hub"
ALLOWLIST_ENV = "MAGPIE_HUB_PLUGINS"

# Built-in plugins: modules of the top-level plugins/ folder, shipped as `magpie_hub_plugins`.
DEFAULT_PLUGINS = (
    "magpie_hub_plugins.recipe_magpie",
    "magpie_hub_plugins.recipe_magpie_mt",
    "magpie_hub_plugins.engine_llamacpp",
    "magpie_hub_plugins.engine_transformers",
    "magpie_hub_plugins.engine_openai",
    "magpie_hub_plugins.engine_vllm",
    "magpie_hub_plugins.recipe_magpie_ultra",
    "magpie_hub_plugins.recipe_lamini",
    "magpie_hub_plugins.recipe_instruct_synth",
    "magpie_hub_plugins.scorers",
    "magpie_hub_plugins.card_magpie",
    "magpie_hub_plugins.taggers",
    "magpie_hub_plugins.card_curation",
    "magpie_hub_plugins.card_review",
)


@dataclass
class PluginInfo:
    name: str
    version: str | None
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=lambda: {k.plural: [] for k in KINDS})
    """Kind (plural, as in `KINDS`) -> the names this plugin registered."""
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": self.hooks,
            **self.provides,
            "error": self.error,
        }


@dataclass
class LoadedPlugins:
    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    registry: Registry

    @property
    def failures(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.error]


def allowlist() -> set[str] | None:
    """Entry-point plugin names allowed by MAGPIE_HUB_PLUGINS, or None when unset."""
    raw = os.environ.get(ALLOWLIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def load_plugins() -> LoadedPlugins:
    """A fresh plugin manager with the built-ins and the allowed entry-point plugins."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}

    for module_name in DEFAULT_PLUGINS:
        short = module_name.rsplit(".", 1)[-1]
        info = PluginInfo(name=short, version=__version__, builtin=True)
        try:
            pm.register(importlib.import_module(module_name), name=short)
        except Exception as exc:  # a broken built-in must not take the CLI down
            info.error = f"{type(exc).__name__}: {exc}"
        infos[short] = info

    allowed = allowlist()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        version = ep.dist.version if ep.dist else None
        info = PluginInfo(name=ep.name, version=version, builtin=False)
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
        infos[ep.name] = info

    registry = Registry()
    for name, info in infos.items():
        plugin = pm.get_plugin(name)
        if plugin is None:
            continue
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    for kind in KINDS:
        _collect(pm, kind.hook, registry, infos)
    return LoadedPlugins(manager=pm, infos=infos, registry=registry)


def _collect(
    pm: pluggy.PluginManager, hook: str, registry: Registry, infos: dict[str, PluginInfo]
) -> None:
    """Call one registration hook plugin by plugin, so each item is credited to its plugin."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        info = infos[impl.plugin_name]
        try:
            impl.function(register=partial(_register, registry, info))
        except Exception as exc:
            info.error = f"{hook}: {type(exc).__name__}: {exc}"


def _register(registry: Registry, info: PluginInfo, item: Any) -> None:
    kind = registry.add(item, info.name)
    info.provides[kind.plural].append(item.name)


_loaded: LoadedPlugins | None = None


def get_plugins() -> LoadedPlugins:
    """The process-wide plugins, loaded on first use."""
    global _loaded
    if _loaded is None:
        _loaded = load_plugins()
    return _loaded


def get_registry() -> Registry:
    return get_plugins().registry


def reset() -> None:
    """Forget loaded plugins (tests, or after changing MAGPIE_HUB_PLUGINS)."""
    global _loaded
    _loaded = None
