"""`review watch`: follow an Argilla dataset; each time `every` more records are complete,
pull the reviews and publish a new release (only the `publish` stages out of date).

What was released is kept in BUILD/.magpie/watch.json and written only after a release
succeeded, so a watch stopped at any moment (Ctrl-C, a crash) starts again where it was:
an interrupted pull or publish is simply redone by the next round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magpie_hub.build import BuildFolder, read_json, write_json
from magpie_hub.config import RunConfig
from magpie_hub.errors import ReviewError


@dataclass
class WatchRound:
    completed: int
    records: int
    released: str | None = None
    """The tag published this round, if any."""
    stages: list[dict[str, Any]] = field(default_factory=list)


def watch(
    config: RunConfig,
    build: Path,
    repo: str,
    *,
    dataset: str,
    every: int = 50,
    tag_prefix: str = "review-",
    interval: float = 60.0,
    once: bool = False,
    local: Path | None = None,
    on_round: Callable[[WatchRound], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[WatchRound]:
    """Poll until interrupted (or one round with `once`); returns the rounds."""
    if every < 1:
        raise ReviewError(f"--every must be 1 or more, not {every}")
    rounds: list[WatchRound] = []
    while True:
        rounds.append(watch_round(config, build, repo, dataset, every, tag_prefix, local))
        if on_round:
            on_round(rounds[-1])
        if once:
            return rounds
        sleep(interval)


def watch_round(
    config: RunConfig,
    build: Path,
    repo: str,
    dataset: str,
    every: int,
    tag_prefix: str,
    local: Path | None,
) -> WatchRound:
    """One check: release when `every` more records are complete than at the last release."""
    from magpie_hub.release.publish import publish
    from magpie_hub.review.sync import review_progress, review_pull

    folder = BuildFolder(build)
    state = _state(folder)
    workspace = config.review.workspace
    progress = review_progress(dataset, workspace=workspace)  # a count, not a listing
    done = WatchRound(progress["completed"], progress["total"])
    if done.completed - state.get("completed", 0) < every:
        return done
    review_pull(build, dataset, workspace=workspace)
    tag = f"{tag_prefix}{state.get('releases', 0) + 1}"
    result = publish(config, build, repo, tag, local=local)
    done.released = tag
    done.stages = [{"name": s.name, "ran": s.ran, "detail": s.detail} for s in result.stages]
    state.update(completed=done.completed, releases=state.get("releases", 0) + 1, tag=tag)
    write_json(folder.watch_state, state)
    return done


def _state(folder: BuildFolder) -> dict[str, Any]:
    if not folder.watch_state.exists():
        return {}
    return dict(
        read_json(folder.watch_state, "the watch state", hint=f"Delete {folder.watch_state}.")
    )
