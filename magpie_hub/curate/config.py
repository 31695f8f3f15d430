"""The parts of a config file that curation reads: `[curate]`, `[filter]` and the seed."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from magpie_hub.config import CurateConfig, ExecutionConfig, FilterConfig
from magpie_hub.config_files import apply_overrides, describe_error, read_toml
from magpie_hub.errors import ConfigError, ConfigValidationError


class CurationConfig(BaseModel):
    """The parts of a config file that curation reads; the rest belongs to generation."""

    model_config = ConfigDict(extra="ignore")

    seed: int = Field(42, ge=0, lt=2**31)
    curate: CurateConfig
    filter: FilterConfig | None = None
    execution: ExecutionConfig = ExecutionConfig()


def load_curation(path: Path, *, overrides: list[str] | None = None) -> CurationConfig:
    """Read the `[curate]` and `[filter]` sections of a config (any recipe, or none)."""
    data = apply_overrides(read_toml(path), overrides or [])
    if "curate" not in data:
        raise ConfigError(
            "has no [curate] section",
            path=path,
            hint="Add one: `magpie-hub init --curate` writes a config with [curate] and [filter].",
        )
    try:
        return CurationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigValidationError(
            path, [describe_error(CurationConfig, e) for e in exc.errors()]
        ) from None
