"""`magpie-hub publish` end to end against the Hub emulator, and the release workflow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, tiny_config, write_config
from hub_emulator import Fault

pytestmark = pytest.mark.slow


def stages(result) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    return {s["name"]: s["ran"] for s in json.loads(result.stdout)["stages"]}


def test_a_second_publish_with_nothing_changed_does_nothing(cli, hub, tiny_model, tmp_path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=4))
    args = ("publish", str(config), "--repo", "alice/pub", "--tag", "v1.0.0")
    args += ("--out", str(tmp_path / "build"), "--json")
    plan = cli(*args, "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    assert stages(plan) == {"generate": True, "card": True, "push": True}
    assert not (tmp_path / "build").exists()  # a dry run does nothing

    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    assert stages(first) == {"generate": True, "card": True, "push": True}
    commits = hub.store.commit_count("alice/pub")
    manifest = (tmp_path / "build" / "manifest.json").read_text()

    second = cli(*args)
    assert second.exit_code == 0, second.stderr
    assert stages(second) == {"generate": False, "card": False, "push": False}
    assert hub.store.commit_count("alice/pub") == commits
    assert (tmp_path / "build" / "manifest.json").read_text() == manifest  # nothing regenerated
    assert dict(hub.store.refs("alice/pub")["tags"])["v1.0.0"]


def test_the_reviewed_view_goes_out_as_a_config_under_a_new_tag(cli, hub, tiny_model, tmp_path):  # type: ignore[no-untyped-def]
    from datasets import load_dataset

    from magpie_hub.build import BuildFolder
    from magpie_hub.review.view import reviewed_view

    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=4))
    build = tmp_path / "build"
    base = ("publish", str(config), "--repo", "alice/rev", "--out", str(build), "--json")
    assert cli(*base, "--tag", "v1").exit_code == 0
    folder = BuildFolder(build)
    rows = folder.rows()
    responses = [
        {
            "uuid": rows[0]["uuid"],
            "user": "ann",
            "question": "quality",
            "value": 4,
            "status": "submitted",
        }
    ]
    import pyarrow.parquet as pq
    from datasets import Features

    features = Features.from_arrow_schema(pq.read_schema(sorted(folder.data.glob("*.parquet"))[0]))
    folder.write_views({"reviewed": reviewed_view(rows, responses, features)})
    second = cli(*base, "--tag", "v2")
    assert second.exit_code == 0, second.stderr
    assert stages(second) == {"generate": False, "card": True, "push": True}
    reviewed = load_dataset("alice/rev", "reviewed", revision="v2", split="train").to_list()
    assert [r["uuid"] for r in reviewed] == [rows[0]["uuid"]]
    assert reviewed[0]["review_quality_mean"] == 4.0
    tags = dict(hub.store.refs("alice/rev")["tags"])
    assert set(tags) == {"v1", "v2"} and tags["v1"] != tags["v2"]


def test_a_publish_killed_during_the_push_completes_on_rerun(
    cli, hub, tiny_model, tmp_path
) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=4))
    build = tmp_path / "build"
    args = ["publish", str(config), "--repo", "alice/killed", "--tag", "v1", "--out", str(build)]
    hub.calls.clear()
    hub.faults.append(Fault("lfs_put", after=0, status=0, times=1, delay=60))  # hang the upload
    env = {**os.environ, "MAGPIE_HUB_PLUGINS": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "magpie_hub", *args, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while hub.calls["lfs_put"] == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    hub.faults.clear()
    assert hub.store.exists("alice/killed") and hub.store.refs("alice/killed")["tags"] == []
    again = cli(*args, "--json")
    assert again.exit_code == 0, again.stderr
    assert stages(again) == {"generate": False, "card": False, "push": True}
    assert [t for t, _ in hub.store.refs("alice/killed")["tags"]] == ["v1"]
    assert hub.store.commit_count("alice/killed") == 2


def workflow_step(path: Path, step_id: str) -> tuple[dict, dict]:
    """The job env and the step with `id` from a workflow file."""
    workflow = yaml.safe_load(path.read_text())
    job = next(iter(workflow["jobs"].values()))
    step = next(s for s in job["steps"] if s.get("id") == step_id)
    return job["env"], step


def test_the_release_workflow_publishes_with_its_own_command_lines(
    hub, tiny_model, tmp_path
) -> None:
    env_block, step = workflow_step(REPO / ".github" / "workflows" / "release.yml", "publish")
    # GitHub evaluates the ${{ }} expressions; here the fake secrets and inputs stand in.
    assert set(env_block) >= {"CONFIG", "DATASET_REPO", "RELEASE_TAG", "HF_TOKEN", "BUILD_DIR"}
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=3))
    summary = tmp_path / "summary.md"
    env = {
        **os.environ,
        "CONFIG": str(config),
        "DATASET_REPO": "magpie-org/released",
        "RELEASE_TAG": "data-v1.2.0",
        "REVIEW": "false",
        "BUILD_DIR": str(tmp_path / "build"),
        "HF_TOKEN": "hf_alice_test",
        "ARGILLA_API_URL": "",
        "ARGILLA_API_KEY": "",
        "MAGPIE_HUB_BASE_URL": "",
        "MAGPIE_HUB_API_KEY": "",
        "GITHUB_STEP_SUMMARY": str(summary),
        "HF_HUB_OFFLINE": "0",
    }
    venv_bin = str(Path(sys.executable).parent)
    script = step["run"].replace(".venv/bin/magpie-hub", f"{venv_bin}/magpie-hub")
    proc = subprocess.run(
        ["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tags = dict(hub.store.refs("magpie-org/released")["tags"])
    assert "v1.2.0" in tags  # data-v1.2.0 -> release v1.2.0
    text = summary.read_text()
    assert text.startswith("## magpie-hub publish: `magpie-org/released` `v1.2.0`")
    assert "| generate | yes |" in text and "| push | yes | [new commit, tag v1.2.0]" in text
    result = json.loads((tmp_path / "build.publish.json").read_text())
    assert [s["name"] for s in result["stages"]] == ["generate", "card", "push"]


def test_the_release_workflow_has_least_permissions_and_one_group_per_dataset() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "release.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    assert "inputs.repo || github.repository" in workflow["concurrency"]["group"]
    triggers = workflow[True]  # YAML reads the key `on` as True
    assert triggers["push"]["tags"] == ["data-v*"] and "workflow_dispatch" in triggers


def test_the_composite_action_is_well_formed() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    inputs = set(action["inputs"])
    assert {"config", "repo", "tag", "hf-token"} <= inputs
    for step in action["runs"]["steps"]:
        assert step.get("shell") == "bash", step
        for name in __import__("re").findall(r"inputs\.([\w-]+)", json.dumps(step)):
            assert name in inputs, name


@pytest.mark.argilla
def test_publish_with_review_pushes_to_argilla_once(
    cli, hub, argilla, tiny_model, tmp_path
) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=4))
    args = ("publish", str(config), "--repo", "alice/reviewed-pub", "--tag", "v1")
    dataset = f"pub-review-{os.urandom(4).hex()}"  # a server named by the environment persists
    args += ("--out", str(tmp_path / "build"), "--review", "--review-dataset", dataset)
    first = cli(*args, "--json")
    assert first.exit_code == 0, first.stderr
    assert stages(first) == {"generate": True, "card": True, "push": True, "review": True}
    review = next(s for s in json.loads(first.stdout)["stages"] if s["name"] == "review")
    assert review["link"].startswith(argilla.api_url.rstrip("/"))
    generated = json.loads((tmp_path / "build" / "manifest.json").read_text())["counts"]
    records = list(argilla.datasets(dataset, workspace="magpie-hub").records())
    assert records and len(records) == generated["generated"]
    second = cli(*args, "--json")
    assert stages(second) == {"generate": False, "card": False, "push": False, "review": False}
    assert len(list(argilla.datasets(dataset, workspace="magpie-hub").records())) == len(records)
