"""Reading a config file: TOML, `--set` overrides, and validation errors that name the
field (the models themselves are in `config.py`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from magpie_hub.errors import ConfigError


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b=value` -> (["a", "b"], value); the value is read as TOML if it parses, else a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"--set expects dotted.key=value, got {item!r}",
            hint="Example: --set engine.threads=2 --set instruction.temperature=0.8",
        )
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return [part.strip() for part in key.split(".")], value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"--set {item}: {part!r} is not a table",
                    field=".".join(path),
                    hint=f"`{part}` holds a plain value; set it with --set {part}=VALUE.",
                )
            node = child
        node[path[-1]] = value
    return data


def read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(
            "config file not found",
            path=path,
            hint=f"Create one with: magpie-hub init {path}",
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"not valid TOML: {exc}",
            path=path,
            hint="Fix the line named above; `magpie-hub init` writes a commented example.",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or exc
        raise ConfigError(
            f"cannot read the config ({why})",
            path=path,
            hint="Pass a magpie-hub.toml file (UTF-8 TOML); `magpie-hub init` writes one.",
        ) from exc


def describe_error(model: type[BaseModel], err: Any) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(model, err["loc"][:-1])
        return loc, f"unknown field; allowed here: {', '.join(allowed)}"
    if err["type"] == "missing":
        return loc, "required field is missing"
    shown = "<redacted>" if "token" in loc or "key" in loc else repr(value)
    return loc, f"{err['msg']} (got {shown})"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return sorted(getattr(current, "model_fields", {}))
