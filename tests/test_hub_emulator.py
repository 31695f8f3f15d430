"""The Hub emulator itself rejects malformed requests the way the Hub does."""

from __future__ import annotations

import base64
import json
import os

import httpx
import pytest

ALICE = {"Authorization": "Bearer hf_alice_test"}


@pytest.fixture
def repo(hub) -> str:
    from huggingface_hub import HfApi

    name = f"alice/strict-{os.urandom(4).hex()}"
    HfApi().create_repo(name, repo_type="dataset")
    return name


def commit(repo: str, lines: list[dict], headers: dict | None = None, rev: str = "main"):
    body = "\n".join(json.dumps(line) for line in lines)
    return httpx.post(
        f"{os.environ['HF_ENDPOINT']}/api/datasets/{repo}/commit/{rev}",
        content=body,
        headers={"Content-Type": "application/x-ndjson", **(ALICE if headers is None else headers)},
    )


HEADER = {"key": "header", "value": {"summary": "s", "description": ""}}
FILE = {"key": "file", "value": {"path": "a.txt", "encoding": "base64", "content": "aGk="}}


def test_a_well_formed_commit_is_a_real_git_commit(hub, repo) -> None:
    response = commit(repo, [HEADER, FILE])
    assert response.status_code == 200, response.text
    sha = response.json()["commitOid"]
    assert hub.store.git(repo, "cat-file", "-t", sha).strip() == "commit"
    assert hub.store.git(repo, "show", f"{sha}:a.txt") == "hi"


def test_malformed_commits_are_rejected(hub, repo) -> None:
    assert commit(repo, [FILE]).status_code == 400  # no header line
    assert commit(repo, [HEADER, {"key": "file", "value": {"path": "a"}}]).status_code == 400
    assert commit(repo, [HEADER, {"key": "nope", "value": {"path": "a"}}]).status_code == 400
    escape = {"key": "file", "value": {**FILE["value"], "path": "../x"}}
    assert commit(repo, [HEADER, escape]).status_code == 400
    unknown_lfs = {
        "key": "lfsFile",
        "value": {"path": "x.parquet", "algo": "sha256", "oid": "0" * 64, "size": 3},
    }
    assert commit(repo, [HEADER, unknown_lfs]).status_code == 422
    assert hub.store.commit_count(repo) == 1


def test_auth_revision_and_ownership_are_checked(hub, repo) -> None:
    assert commit(repo, [HEADER, FILE], headers={}).status_code == 401
    bad = commit(repo, [HEADER, FILE], headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    bob = commit(repo, [HEADER, FILE], headers={"Authorization": "Bearer hf_bob_test"})
    assert bob.status_code == 403
    missing = commit(repo, [HEADER, FILE], rev="no-such-branch")
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "RevisionNotFound"
    stale = {"key": "header", "value": {"summary": "s", "parentCommit": "0" * 40}}
    assert commit(repo, [stale, FILE]).status_code == 412
    url = f"{os.environ['HF_ENDPOINT']}/api/datasets/alice/absent/preupload/main"
    sample = base64.b64encode(b"x").decode()
    absent = httpx.post(
        url, json={"files": [{"path": "a", "sample": sample, "size": 1}]}, headers=ALICE
    )
    assert absent.status_code == 404 and absent.headers["X-Error-Code"] == "RepoNotFound"
