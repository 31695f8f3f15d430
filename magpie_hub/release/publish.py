"""`publish`: generate (resuming) -> curate -> card -> push (one commit, then the tag) -> review.

Each stage records a content hash of what it consumed in BUILD/.magpie/publish.json and is
skipped when that hash is unchanged (and, for the push, the Hub still has the tag), so a
re-run after a failure continues where it broke and a re-run with nothing changed does
nothing. Views (sft, dpo, reviewed) are part of the build and travel as configs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from magpie_hub import __version__
from magpie_hub.build import BuildFolder, read_json, write_json
from magpie_hub.config import RunConfig
from magpie_hub.generate.run import plan_build, run_build
from magpie_hub.release.hub import push, push_local
from magpie_hub.release.tree import stage_release


@dataclass
class Stage:
    name: str
    ran: bool
    detail: str
    link: str | None = None


@dataclass
class PublishResult:
    build: str
    repo: str
    tag: str
    dry_run: bool
    stages: list[Stage] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_markdown(self) -> str:
        """The summary for `$GITHUB_STEP_SUMMARY`."""
        lines = [f"## magpie-hub publish: `{self.repo}` `{self.tag}`", ""]
        lines += ["| stage | ran | detail |", "|---|---|---|"]
        for s in self.stages:
            detail = f"[{s.detail}]({s.link})" if s.link else s.detail
            lines.append(f"| {s.name} | {'yes' if s.ran else 'skipped'} | {detail} |")
        return "\n".join(lines) + "\n"


def tree_hash(paths: list[Path], root: Path, *extra: str) -> str:
    """SHA-256 over the files' relative paths and bytes, plus `extra` strings."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as fh:  # read in blocks: a view of a million rows is one file
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()


def publish(
    config: RunConfig,
    build: Path,
    repo: str,
    tag: str,
    *,
    review_dataset: str | None = None,
    local: Path | None = None,
    dry_run: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> PublishResult:
    """Run (or with `dry_run`, plan) every stage that is not already up to date."""
    from magpie_hub.release.hub import check_names

    check_names(repo, tag)  # before hours of generation, not after
    folder = BuildFolder(build)
    if dry_run:
        return _publish(config, folder, repo, tag, review_dataset, local, True, on_stage)
    with folder.writer():
        return _publish(config, folder, repo, tag, review_dataset, local, False, on_stage)


def _publish(
    config: RunConfig,
    folder: BuildFolder,
    repo: str,
    tag: str,
    review_dataset: str | None,
    local: Path | None,
    dry_run: bool,
    on_stage: Callable[[str], None] | None,
) -> PublishResult:
    build = folder.root
    result = PublishResult(str(build), repo, tag, dry_run)
    state: dict[str, Any] = (
        read_json(folder.publish_state, "publish state", hint=f"Delete {folder.publish_state}.")
        if folder.publish_state.exists()
        else {}
    )

    def save() -> None:
        write_json(folder.publish_state, state)

    def note(name: str) -> None:
        if on_stage:
            on_stage(name)

    # 1. generate (resume-aware; nothing to do when every row is settled)
    note("generate")
    manifest = folder.read_manifest() or {}
    done = manifest.get("status") == "complete" and manifest.get("fingerprint") == (
        config.fingerprint()
    )
    if dry_run:
        result.stages.append(Stage("generate", not done, "up to date" if done else "would run"))
    else:
        plan = plan_build(config, build)
        if plan.todo or manifest.get("status") != "complete":
            generated = run_build(plan)
            if not generated.complete:
                result.stages.append(Stage("generate", True, "incomplete"))
                return result
            result.stages.append(Stage("generate", True, f"{len(plan.todo)} rows generated"))
        else:
            result.stages.append(Stage("generate", False, "up to date"))

    # 2. curate (when the config has [curate]): tags, then the filtered view
    if config.curate is not None:
        note("curate")
        result.stages.append(_curate_stage(config, folder, state, dry_run, save))
        if result.stages[-1].detail == "incomplete":
            return result

    # 3. card (and the release tree it belongs to)
    note("card")
    data = [build / f for f in folder.data_files()]
    inputs = tree_hash([*data, folder.manifest_path] if data else [], build, repo, tag)
    inputs = hashlib.sha256(f"{inputs}|{__version__}".encode()).hexdigest()
    fresh = state.get("card") == inputs and folder.release.exists()
    if dry_run or fresh:
        result.stages.append(Stage("card", not fresh, _plan(fresh, dry_run)))
    else:
        stage_release(build, folder.release, repo_id=repo, tag=tag)
        state["card"] = inputs
        save()
        result.stages.append(Stage("card", True, "README.md rendered"))

    # 4. push (one commit, then the tag), or the local tree
    note("push")
    if local is not None:
        if not dry_run:
            push_local(build, local, repo_id=repo, tag=tag)
        result.stages.append(Stage("push", not dry_run, f"tree written to {local}"))
    else:
        tree = folder.release
        files = [p for p in tree.rglob("*") if p.is_file()] if tree.exists() else []
        release = tree_hash(files, tree, repo, tag) if files else ""
        pushed = state.get("push", {})
        fresh = pushed.get("release") == release and _tag_exists(repo, tag, pushed.get("commit"))
        url = f"{_endpoint()}/datasets/{repo}/tree/{tag}"
        if dry_run or fresh:
            ran = not fresh
            result.stages.append(Stage("push", ran, _plan(fresh, dry_run), url if fresh else None))
        else:
            pushed_now = push(build, repo, tag=tag, staged=True)  # the card stage staged it
            state["push"] = {"release": release, "commit": pushed_now.commit, "tag": tag}
            save()
            what = "new commit" if pushed_now.committed else "no change"
            result.stages.append(Stage("push", True, f"{what}, tag {tag}", url))

    # 5. review push (optional)
    if review_dataset:
        note("review")
        rows = tree_hash(folder.shards(), build, review_dataset)
        fresh = state.get("review") == rows
        if dry_run or fresh:
            result.stages.append(Stage("review", not fresh, _plan(fresh, dry_run)))
        else:
            from magpie_hub.review.sync import review_push

            opts = config.review
            reviewed = review_push(
                build,
                review_dataset,
                workspace=opts.workspace,
                sample=opts.sample,
                seed=opts.seed,
                create_workspace=True,
                annotators=opts.annotators,
                min_submitted=opts.min_submitted,
                suggestions=opts.suggestions,
            )
            state["review"] = rows
            save()
            detail = f"{reviewed.added} records added to {review_dataset}"
            result.stages.append(Stage("review", True, detail, reviewed.url))
    return result


def _curate_stage(
    config: RunConfig,
    folder: BuildFolder,
    state: dict[str, Any],
    dry_run: bool,
    save: Callable[[], None],
) -> Stage:
    """Curate unless this generation was already curated with these settings."""
    from magpie_hub.config import redacted_dump
    from magpie_hub.curate.run import plan_curate, run_curate
    from magpie_hub.errors import CurateIncompleteError

    manifest = folder.read_manifest() or {}
    settings = {
        "curate": redacted_dump(config.curate) if config.curate else None,
        "filter": redacted_dump(config.filter) if config.filter else None,
        "generated": [manifest.get("fingerprint"), manifest.get("counts")],
        "version": __version__,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    fresh = state.get("curate") == key and "curate" in manifest
    if dry_run or fresh:
        return Stage("curate", not fresh, _plan(fresh, dry_run))
    assert config.curate is not None
    try:
        curated = run_curate(
            plan_curate(
                folder.root,
                config.curate,
                config.filter,
                seed=config.seed,
                execution=config.execution,
            )
        )
    except CurateIncompleteError:
        return Stage("curate", True, "incomplete")
    state["curate"] = key
    save()
    funnel = (curated.manifest.get("filter") or {}).get("funnel")
    kept = f", {funnel[-1]['rows_after']} rows kept by the filter" if funnel else ""
    return Stage("curate", True, f"{len(curated.manifest['curate']['taggers'])} taggers{kept}")


def _plan(fresh: bool, dry_run: bool) -> str:
    return "up to date" if fresh else ("would run" if dry_run else "ran")


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def _tag_exists(repo: str, tag: str, commit: str | None) -> bool:
    """Whether the Hub still has `tag` at `commit` (a deleted repo or tag means push again)."""
    if not commit:
        return False
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from magpie_hub.errors import network_errors

    expected: tuple[type[BaseException], ...] = (HfHubHTTPError, *network_errors())
    try:
        refs = HfApi().list_repo_refs(repo, repo_type="dataset")
    except expected:
        return False  # gone, or unreachable: the push stage runs and says which
    return any(t.name == tag and t.target_commit == commit for t in refs.tags)
