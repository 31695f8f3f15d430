"""The release tree: exactly the files one Hub release commits, staged from a build folder.

README.md                      the dataset card
data/<config>/<shard>.parquet  one folder per config (the build's data/ and its views)
images/<config>-lengths.png    plots embedded in the card
magpie-hub.toml                the config used, secrets removed
manifest.json                  the build's manifest
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from magpie_hub.build import MANIFEST, BuildFolder
from magpie_hub.errors import BuildFolderError
from magpie_hub.plugins import get_registry
from magpie_hub.release.card import CardContext, config_stats, length_plot, render_card


@dataclass(frozen=True)
class ReleaseTree:
    root: Path
    files: list[str]
    """Repo paths, sorted."""
    configs: dict[str, list[str]]
    """Config name -> its Parquet files (repo paths)."""
    card: str


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def stage_release(
    build: Path, dest: Path, *, repo_id: str = "NAMESPACE/NAME", tag: str | None = None
) -> ReleaseTree:
    """Write the release tree of `build` into `dest` (emptied first) and render the card."""
    folder = BuildFolder(build)
    manifest = folder.complete_manifest()
    configs = folder.configs()
    if not configs:
        raise BuildFolderError(build, "the build has no Parquet data to publish")
    if dest.exists() and any(dest.iterdir()):
        if not (dest / MANIFEST).exists() or dest.resolve() == build.resolve():
            raise BuildFolderError(
                dest,
                "exists and is not an earlier release tree; refusing to overwrite it",
                hint="Pass an empty or new folder.",
            )
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    repo_configs: dict[str, list[str]] = {}
    for name, shards in configs.items():
        (dest / "data" / name).mkdir(parents=True)
        repo_configs[name] = []
        for shard in shards:
            path = f"data/{name}/{shard.name}"
            shutil.copyfile(shard, dest / path)
            repo_configs[name].append(path)
    # The manifest's config is already redacted (generate writes it so); keep it that way.
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    config = _without_none(manifest.get("config") or {})
    (dest / "magpie-hub.toml").write_text(tomli_w.dumps(config), encoding="utf-8")

    stats = {name: config_stats(dest, name, paths) for name, paths in repo_configs.items()}
    ctx = CardContext(tree=dest, manifest=manifest, stats=stats, repo_id=repo_id, tag=tag)
    for name, paths in repo_configs.items():
        lengths = stats[name].text_lengths
        if stats[name].rows and (image := length_plot(dest, name, paths, lengths)):
            ctx.images[name] = image
    card = render_card(ctx, list(get_registry().card_sections.values()))
    (dest / "README.md").write_text(card, encoding="utf-8")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    return ReleaseTree(root=dest, files=files, configs=repo_configs, card=card)


def read_release(dest: Path) -> ReleaseTree:
    """A release tree staged earlier (by `stage_release`), read back as it is on disk."""
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    configs: dict[str, list[str]] = {}
    for path in files:
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "data" and path.endswith(".parquet"):
            configs.setdefault(parts[1], []).append(path)
    card = (dest / "README.md").read_text(encoding="utf-8")
    return ReleaseTree(root=dest, files=files, configs=configs, card=card)
