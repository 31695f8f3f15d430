"""`review watch`: reviews completing in Argilla become new Hub releases; Ctrl-C is safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, tiny_config, write_config
from test_review import respond

pytestmark = [pytest.mark.slow, pytest.mark.argilla]


def published_for_review(cli, config, repo: str, build) -> str:  # type: ignore[no-untyped-def]
    """Publish CONFIG as v1 of REPO with its rows pushed to a new Argilla dataset."""
    dataset = f"watch-{os.urandom(4).hex()}"
    args = ("publish", str(config), "--repo", repo, "--tag", "v1", "--out", str(build))
    first = cli(*args, "--review", "--review-dataset", dataset)
    assert first.exit_code == 0, first.stderr
    return dataset


def test_watch_releases_once_enough_reviews_are_complete(cli, hub, argilla, tiny_model, tmp_path):  # type: ignore[no-untyped-def]
    from datasets import load_dataset
    from huggingface_hub import hf_hub_download

    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=4))
    build = tmp_path / "build"
    dataset = published_for_review(cli, config, "alice/watched", build)
    ds = argilla.datasets(dataset, workspace="magpie-hub")
    ids = sorted(str(r.id) for r in ds.records())
    watch = (
        "review", "watch", str(config), "--repo", "alice/watched", "--out", str(build),
        "--dataset", dataset, "--every", "2", "--once", "--json",
    )  # fmt: skip
    nothing = cli(*watch)
    assert nothing.exit_code == 0, nothing.stderr
    assert json.loads(nothing.stdout)["released"] is None
    respond(
        argilla,
        dataset,
        "magpie-hub",
        {i: [("annotator", "quality", 4, "submitted")] for i in ids[:2]},
    )
    released = cli(*watch)
    assert released.exit_code == 0, released.stderr
    got = json.loads(released.stdout)
    assert (got["completed"], got["released"]) == (2, "review-1")
    assert {s["name"]: s["ran"] for s in got["stages"]} == {
        "generate": False,
        "card": True,
        "push": True,
    }
    reviewed = load_dataset("alice/watched", "reviewed", revision="review-1", split="train")
    assert sorted(reviewed["uuid"]) == ids[:2] and set(reviewed["review_quality_mean"]) == {4.0}
    path = hf_hub_download("alice/watched", "README.md", repo_type="dataset", revision="review-1")
    card = Path(path).read_text()
    assert "## Human review" in card and "2 rows were reviewed by 1 people" in card
    again = cli(*watch)
    assert json.loads(again.stdout)["released"] is None  # no new completions since review-1
    assert json.loads((build / ".magpie" / "watch.json").read_text())["tag"] == "review-1"


def test_ctrl_c_stops_the_watch_with_a_message_and_no_traceback(
    cli, hub, argilla, tiny_model, tmp_path
):  # type: ignore[no-untyped-def]
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=2))
    build = tmp_path / "build"
    dataset = published_for_review(cli, config, "alice/watched2", build)
    proc = subprocess.Popen(
        [sys.executable, "-m", "magpie_hub", "review", "watch", str(config), "--repo",
         "alice/watched2", "--out", str(build), "--dataset", dataset, "--interval", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(12)  # start-up, then at least one round
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "complete; next release after 50 more" in stderr
    assert "Stopped." in stderr and "Traceback" not in stderr
