"""Publish a build to the Hugging Face Hub: one release is one commit, then a tag.

LFS files (the Parquet shards and plots) are uploaded first (preupload), so a push that
fails part way leaves the repository without a new commit, and a retry re-uses what
already arrived. The commit then adds every file of the release tree at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from magpie_hub.build import BuildFolder
from magpie_hub.errors import (
    HubAuthError,
    HubConflictError,
    HubError,
    HubNetworkError,
    HubPermissionError,
    in_chain,
    network_errors,
)
from magpie_hub.release.tree import ReleaseTree, read_release, stage_release

T = TypeVar("T")
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")
GIT_REF = re.compile(r"[A-Za-z0-9][\w./-]{0,199}")
TOKEN_HINT = "Set HF_TOKEN, or run `hf auth login`; the token needs write access."


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    url: str
    revision: str
    commit: str | None
    """The commit that holds the release (the existing one when nothing changed)."""
    committed: bool
    """False when the Hub already had exactly this release."""
    tag: str | None
    files: list[str]


def _bad_ref(name: str) -> bool:
    """What git (and so the Hub) refuses as a tag or branch name, in the common cases."""
    shape = GIT_REF.fullmatch(name) is not None
    return not shape or ".." in name or "//" in name or name.endswith((".lock", ".", "/"))


def check_names(repo_id: str, tag: str | None, revision: str = "main") -> None:
    """Refuse a repository id, tag or branch the Hub would refuse, before any work."""
    if not REPO_ID.fullmatch(repo_id):
        raise HubError(repo_id, "not a repository id", hint="Use NAMESPACE/NAME, e.g. alice/data.")
    for kind, name in (("tag", tag), ("revision", revision)):
        if name is not None and _bad_ref(name):
            raise HubError(
                repo_id,
                f"{name!r} is not a valid {kind} name",
                hint=f"Use letters, digits and . _ - / (no spaces), e.g. v1.0.0, for --{kind}.",
            )


def push_local(build: Path, dest: Path, *, repo_id: str, tag: str | None = None) -> PushResult:
    """Write exactly the tree a push would commit into `dest`; no Hub involved."""
    check_names(repo_id, tag)
    tree = stage_release(build, dest, repo_id=repo_id, tag=tag)
    return PushResult(repo_id, str(dest), "local", None, False, tag, tree.files)


def push(
    build: Path,
    repo_id: str,
    *,
    tag: str | None = None,
    private: bool = False,
    revision: str = "main",
    token: str | None = None,
    retries: int = 5,
    backoff: float = 2.0,
    staged: bool = False,
) -> PushResult:
    """Publish `build` to the dataset repo `repo_id` as one commit on `revision`, then tag it.
    With `staged`, push the release tree already staged for this repo and tag as it is."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token

    check_names(repo_id, tag, revision)
    token = token or get_token()
    if not token:
        raise HubAuthError(repo_id, "no Hugging Face token found", hint=TOKEN_HINT)
    api = HfApi(token=token)
    call = _Caller(repo_id, retries, backoff)

    call(api.whoami)  # reachable, and the token is good: before anything is written
    tree = (
        read_release(BuildFolder(build).release)
        if staged
        else stage_release(build, BuildFolder(build).release, repo_id=repo_id, tag=tag)
    )
    kind = "dataset"
    url = call(lambda: api.create_repo(repo_id, repo_type=kind, private=private, exist_ok=True))
    info = call(lambda: api.repo_info(repo_id, repo_type=kind))
    if private and not info.private:
        raise HubConflictError(
            repo_id,
            "--private was given but the repository exists and is public",
            hint="Make it private on the Hub first, or push without --private.",
        )
    if revision != "main":
        call(lambda: api.create_branch(repo_id, repo_type=kind, branch=revision, exist_ok=True))
    parent = call(lambda: api.repo_info(repo_id, repo_type="dataset", revision=revision)).sha
    remote = call(lambda: api.list_repo_files(repo_id, repo_type="dataset", revision=revision))

    additions = [CommitOperationAdd(path, tree.root / path) for path in tree.files]
    stale = [p for p in remote if p not in tree.files and p != ".gitattributes"]
    deletions = [CommitOperationDelete(p) for p in stale]
    call(
        lambda: api.preupload_lfs_files(repo_id, additions, repo_type="dataset", revision=revision)
    )
    commit = call(
        lambda: api.create_commit(
            repo_id,
            [*additions, *deletions],
            repo_type="dataset",
            revision=revision,
            commit_message=f"Release {tag}" if tag else "Publish build",
            commit_description=_description(tree),
            parent_commit=parent,
        )
    )
    if tag:
        _tag(api, call, repo_id, tag, commit.oid)
    return PushResult(
        repo_id=repo_id,
        url=str(url),
        revision=revision,
        commit=commit.oid,
        committed=commit.oid != parent,
        tag=tag,
        files=tree.files,
    )


def _description(tree: ReleaseTree) -> str:
    rows = ", ".join(f"{name}: {len(files)} shard(s)" for name, files in tree.configs.items())
    return f"Published by magpie-hub. Configs: {rows}."


def _tag(api: Any, call: _Caller, repo_id: str, tag: str, commit: str) -> None:
    """Tag the release commit; an existing tag must already point at it."""
    refs = call(lambda: api.list_repo_refs(repo_id, repo_type="dataset"))
    existing = {t.name: t.target_commit for t in refs.tags}
    if tag in existing:
        if existing[tag] != commit:
            raise HubConflictError(
                repo_id,
                f"tag {tag} already exists at commit {existing[tag][:8]}, not at this release",
                hint="Releases are immutable: pick a new tag, e.g. the next version.",
            )
        return
    call(lambda: api.create_tag(repo_id, repo_type="dataset", tag=tag, revision=commit))


class _Caller:
    """Runs one Hub call: retries rate limits and gateway errors with backoff, maps failures
    to our errors."""

    def __init__(self, repo_id: str, retries: int, backoff: float) -> None:
        self.repo_id, self.retries, self.backoff = repo_id, retries, backoff

    def __call__(self, fn: Callable[[], T]) -> T:
        from huggingface_hub.errors import HfHubHTTPError

        for attempt in range(self.retries + 1):
            try:
                return fn()
            except Exception as exc:
                # huggingface_hub wraps failed LFS uploads in a RuntimeError: look inside.
                http = in_chain(exc, HfHubHTTPError)
                if http is not None:
                    status = http.response.status_code if http.response is not None else None
                    if status in RETRIED and attempt < self.retries:
                        time.sleep(_retry_after(http) or self.backoff * 2**attempt)
                        continue
                    raise self._http_error(http, status) from exc
                if in_chain(exc, network_errors()) is not None:
                    raise HubNetworkError(
                        self.repo_id,
                        f"cannot reach the Hub ({type(exc).__name__}: {exc})",
                        hint="Check the network (and HF_ENDPOINT), then push again; "
                        "the local build is untouched.",
                    ) from exc
                raise
        raise AssertionError("unreachable")

    def _http_error(self, exc: Exception, status: int | None) -> HubError:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if status == 401:
            return HubAuthError(self.repo_id, "the Hub rejected the token (401)", hint=TOKEN_HINT)
        if status == 403:
            return HubPermissionError(
                self.repo_id,
                "this token cannot write to the repository (403)",
                hint="Push to your own namespace or an organisation you can write to, "
                "with a token that has write access.",
            )
        if status == 429:
            return HubError(
                self.repo_id,
                "the Hub kept rate-limiting the push (429)",
                hint="Wait a few minutes and push again; what already arrived is reused.",
            )
        return HubError(
            self.repo_id,
            f"the Hub answered {status}: {message}",
            hint="Push again; files that already arrived are not uploaded twice.",
        )


def _retry_after(exc: Any) -> float | None:
    value = exc.response.headers.get("Retry-After") if exc.response is not None else None
    return float(value) if value and value.isdigit() else None


RETRIED = {429, 502, 503, 504}
"""Statuses retried with backoff: rate limits, and gateways that never reached the Hub (a
500 may have been applied, so it is reported, not repeated)."""
