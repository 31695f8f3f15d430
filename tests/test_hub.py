"""`magpie-hub push` against the Hub emulator, driving the unmodified huggingface_hub and
datasets clients over HTTP (HF_ENDPOINT is set in conftest before either is imported)."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import free_port, tiny_config, write_config
from hub_emulator import Fault

from magpie_hub.errors import HubAuthError, HubError, HubNetworkError, HubPermissionError
from magpie_hub.release.hub import push

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny-model build with a second config (a view folder under data/)."""
    from magpie_hub.cli.main import main

    work = tmp_path_factory.mktemp("hub-build")
    config = write_config(work / "c.toml", tiny_config(tiny_model, num_rows=6))
    try:
        main(["generate", str(config), "--out", str(work / "build"), "--quiet"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    view = work / "build" / "data" / "pairs"
    view.mkdir()
    pq.write_table(
        pa.table({"prompt": ["a", "bb"], "score": [0.5, None]}), view / "train-00000.parquet"
    )
    return work / "build"


def build_rows(build: Path, config: str) -> list[dict]:
    folder = build / "data" if config == "default" else build / "data" / config
    return [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def load(repo: str, config: str, revision: str) -> list[dict]:
    from datasets import load_dataset

    return load_dataset(repo, config, revision=revision, split="train").to_list()


def test_round_trip_every_config_at_the_tag(hub, build) -> None:
    result = push(build, "alice/round-trip", tag="v1.0.0")
    assert result.committed and result.tag == "v1.0.0"
    assert build_rows(build, "default")
    for config in ("default", "pairs"):
        assert load("alice/round-trip", config, "v1.0.0") == build_rows(build, config)
    tags = hub.store.refs("alice/round-trip")["tags"]
    assert tags == [("v1.0.0", result.commit)]


def test_one_commit_per_release_and_an_unchanged_push_makes_none(hub, build) -> None:
    first = push(build, "alice/commits", tag="v1")
    count = hub.store.commit_count("alice/commits")
    assert count == 2  # the repository's initial commit, then the release
    again = push(build, "alice/commits", tag="v1")
    assert not again.committed and again.commit == first.commit
    assert hub.store.commit_count("alice/commits") == count
    # a new tag changes the card (it names the release): exactly one more commit
    second = push(build, "alice/commits", tag="v2")
    assert second.committed and hub.store.commit_count("alice/commits") == count + 1
    message = hub.store.git("alice/commits", "log", "-1", "--format=%s").strip()
    assert message == "Release v2"
    files = hub.store.git("alice/commits", "ls-tree", "-r", "--name-only", "v2").split()
    assert set(files) == {".gitattributes", *second.files}


def test_a_failed_upload_leaves_no_commit_and_a_retry_reuses_what_arrived(hub, build) -> None:
    repo = "alice/retry"
    hub.calls.clear()
    hub.faults.append(Fault("lfs_put", after=1, status=507))
    with pytest.raises(HubError, match="507"):
        push(build, repo, tag="v1")
    assert hub.store.commit_count(repo) == 1  # only the repository's initial commit
    assert hub.store.refs(repo)["tags"] == []
    assert hub.calls["commit"] == 0
    hub.faults.clear()
    hub.calls.clear()
    result = push(build, repo, tag="v1")
    lfs_files = [f for f in result.files if f.endswith((".parquet", ".png"))]
    assert len(lfs_files) >= 3
    assert hub.calls["lfs_put"] == len(lfs_files) - 1  # the one that arrived is not re-sent
    assert hub.store.commit_count(repo) == 2 and result.committed


@pytest.mark.parametrize(
    ("action", "drop"),
    [("lfs_put", "before"), ("lfs_put", "after"), ("commit", "before"), ("commit", "after")],
)
def test_a_dropped_connection_is_one_message_and_a_rerun_makes_one_release(
    hub, build, action, drop
) -> None:
    """The connection dies mid-response, before or after the Hub did the work (an upload
    that arrived, a commit that was made): one HubNetworkError; re-running the same push
    leaves exactly one release commit and the tag on it."""
    repo = f"alice/dropped-{action}-{drop}".replace("_", "-")
    hub.faults.append(Fault(action, after=0, status=0, times=1, drop=drop))
    try:
        push(build, repo, tag="v1")  # huggingface_hub retries LFS uploads on its own
    except HubNetworkError as caught:
        assert "push again" in (caught.hint or "")
        assert "RemoteProtocolError" in str(caught)
    else:
        assert action == "lfs_put", "a dropped commit must not pass unnoticed"
    assert hub.calls[action] >= 1 and not [f for f in hub.faults if f.times]  # it fired
    result = push(build, repo, tag="v1")
    assert hub.store.commit_count(repo) == 2  # the repository's creation and one release
    tags = dict(hub.store.refs(repo)["tags"])
    assert set(tags) == {"v1"} and tags["v1"] == result.commit
    files = hub.store.git(repo, "ls-tree", "-r", "--name-only", "v1").split()
    assert set(files) == {".gitattributes", *result.files}


def test_rate_limits_are_retried(hub, build) -> None:
    hub.faults.append(Fault("commit", after=0, status=429, times=2, headers={"Retry-After": "0"}))
    result = push(build, "alice/rate-limited", tag="v1", backoff=0.01)
    assert result.committed
    assert hub.store.commit_count("alice/rate-limited") == 2


def test_gateway_errors_are_retried_and_a_lasting_one_is_reported(hub, build) -> None:
    hub.faults.append(Fault("commit", after=0, status=503, times=2))
    assert push(build, "alice/flaky", tag="v1", backoff=0.01).committed
    assert hub.store.commit_count("alice/flaky") == 2

    hub.faults.append(Fault("commit", after=0, status=502))
    with pytest.raises(HubError) as caught:
        push(build, "alice/down", tag="v1", backoff=0.01, retries=2)
    assert "502" in str(caught.value) and caught.value.hint
    assert hub.store.commit_count("alice/down") <= 1  # the repo's creation, no release


def card_table(card: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line starts with `header`."""
    lines = card.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_card_yaml_parses_and_every_number_matches_the_pushed_files(hub, build, tmp_path) -> None:
    from huggingface_hub import DatasetCard, snapshot_download

    push(build, "alice/card", tag="v1.0.0")
    card = DatasetCard.load("alice/card", repo_type="dataset")
    data = card.data
    assert data.license == "other" and data.size_categories == ["n<1K"]
    assert {"synthetic", "magpie", "distilabel"} <= set(data.tags)
    assert [c["config_name"] for c in data.configs] == ["default", "pairs"]
    local = Path(snapshot_download("alice/card", repo_type="dataset", revision="v1.0.0"))
    text = (local / "README.md").read_text()
    rows = {c: build_rows(build, c) for c in ("default", "pairs")}
    pushed = {
        c: [
            r
            for f in sorted((local / "data" / c).glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()
        ]
        for c in rows
    }
    assert pushed == rows
    assert card_table(text, "| config | rows |") == [[c, str(len(pushed[c]))] for c in pushed]
    manifest = json.loads((local / "manifest.json").read_text())
    dropped = [[k, str(v)] for k, v in manifest["counts"]["dropped_by_reason"].items()]
    if dropped:
        assert card_table(text, "| reason | rows |") == dropped
    for config, column, *numbers in card_table(text, "| config | column |"):
        lengths = [len(r[column] or "") for r in pushed[config]]
        expected = [min(lengths), float(statistics.median(lengths))]
        expected += [round(statistics.fmean(lengths), 1), max(lengths)]
        assert [float(n) for n in numbers] == [float(e) for e in expected], (config, column)
    turns = card_table(text, "| turns | rows |")
    counted: dict[int, int] = {}
    for r in pushed["default"]:
        n = sum(1 for m in r["conversation"] if m["role"] == "user")
        counted[n] = counted.get(n, 0) + 1
    assert turns == [[str(k), str(v)] for k, v in sorted(counted.items())]
    assert card_table(text, "| column | rows | mean |") == [["score", "1", "0.5", "0.5", "0.5"]]
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (local / image).read_bytes().startswith(b"\x89PNG")
    assert "Notes from the example plugin" not in text  # only with that plugin installed
    assert "## System prompt mix" not in text  # the tiny build uses no system prompts


def test_the_token_is_in_no_pushed_file_and_private_is_honoured(hub, build, monkeypatch) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    push(build, "alice/private-data", tag="v1", private=True)
    for token in (False, "hf_bob_test"):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(token=token).repo_info("alice/private-data", repo_type="dataset")
    assert HfApi().repo_info("alice/private-data", repo_type="dataset").private
    git_dir = hub.store.path("alice/private-data")
    blobs = subprocess.run(
        ["git", "--git-dir", str(git_dir), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    lfs = b"".join(p.read_bytes() for p in hub.store.lfs_dir.rglob("*") if p.is_file())
    assert b"hf_alice_test" not in blobs + lfs


def test_clear_errors_for_auth_permissions_and_the_network(hub, build, monkeypatch) -> None:
    before = {p: p.read_bytes() for p in (build / "data").rglob("*") if p.is_file()}
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubAuthError, match="no Hugging Face token"):
        push(build, "alice/errors")
    with pytest.raises(HubAuthError, match="401"):
        push(build, "alice/errors", token="hf_wrong")
    with pytest.raises(HubPermissionError, match="403"):
        push(build, "bob/not-yours", token="hf_alice_test")
    import huggingface_hub.constants

    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    with pytest.raises(HubNetworkError, match="cannot reach the Hub"):
        push(build, "alice/errors", token="hf_alice_test")
    after = {p: p.read_bytes() for p in (build / "data").rglob("*") if p.is_file()}
    assert after == before


def test_cli_push_errors_are_one_message_and_a_hint(cli, hub, build, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    result = cli("push", str(build), "--repo", "alice/cli")
    assert result.exit_code == 1
    assert "no Hugging Face token" in result.stderr and "Hint: Set HF_TOKEN" in result.stderr


def test_local_tree_is_what_a_push_commits_and_loads(cli, hub, build, tmp_path) -> None:
    from datasets import load_dataset

    out = tmp_path / "tree"
    result = cli("push", str(build), "--repo", "alice/local", "--tag", "v1", "--local", str(out))
    assert result.exit_code == 0, result.stderr
    for config in ("default", "pairs"):
        assert load_dataset(str(out), config, split="train").to_list() == build_rows(build, config)
    pushed = cli("push", str(build), "--repo", "alice/local", "--tag", "v1", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    info = json.loads(pushed.stdout)
    assert info["committed"] and info["tag"] == "v1"
    local_files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert info["files"] == local_files
    for path in local_files:
        entry = hub.store.entry("alice/local", hub.store.resolve("alice/local", "v1"), path)
        assert hub.store.content("alice/local", entry) == (out / path).read_bytes(), path


def test_card_command_includes_plugin_sections(cli, with_plugins, build, tmp_path) -> None:
    copy = tmp_path / "build"
    shutil.copytree(build, copy)
    result = cli("card", str(copy), "--repo", "alice/x")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("---\nlicense: other\n")
    total = len(build_rows(build, "default")) + len(build_rows(build, "pairs"))
    assert f"## Notes from the example plugin\n\nThis card covers {total} rows." in result.stdout


def test_an_unfinished_build_is_refused(cli, tmp_path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text(json.dumps({"status": "running"}))
    result = cli("card", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "not complete" in result.stderr and "Re-run the same" in result.stderr


def test_a_revision_branch_gets_the_release_and_main_stays(hub, build) -> None:
    main_before = push(build, "alice/branches").commit
    staged = push(build, "alice/branches", revision="staging", tag="rc1")
    assert staged.revision == "staging" and staged.committed
    branches = dict(hub.store.refs("alice/branches")["branches"])
    assert branches == {"main": main_before, "staging": staged.commit}
    assert dict(hub.store.refs("alice/branches")["tags"]) == {"rc1": staged.commit}


def test_local_refuses_to_overwrite_a_folder_that_is_not_a_release(cli, build, tmp_path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    result = cli("push", str(build), "--repo", "alice/x", "--local", str(precious))
    assert result.exit_code == 1 and "refusing to overwrite" in result.stderr
    assert (precious / "notes.txt").read_text() == "keep me"
    assert cli("push", str(build), "--repo", "alice/x", "--local", str(build)).exit_code == 1
    assert (build / "manifest.json").exists()
