"""Opt-in: the same push against the real Hugging Face Hub.

Runs when HF_TOKEN and MAGPIE_HUB_TEST_NAMESPACE are set (reported as skipped otherwise).
It creates a private dataset repo in that namespace, pushes with a tag, loads it back
at the tag, and deletes the repo. It runs in a subprocess because this pytest process
has HF_ENDPOINT pinned to the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import REAL_HF_TOKEN, tiny_config, write_config

pytestmark = [pytest.mark.hub_live, pytest.mark.slow]

SCRIPT = """
import sys
from pathlib import Path
import pyarrow.parquet as pq
from datasets import load_dataset
from huggingface_hub import HfApi
from magpie_hub.release.hub import push

build, repo = Path(sys.argv[1]), sys.argv[2]
try:
    result = push(build, repo, tag="v0.0.1", private=True)
    again = push(build, repo, tag="v0.0.1", private=True)
    assert result.committed and not again.committed
    shards = sorted((build / "data").glob("*.parquet"))
    rows = [r for f in shards for r in pq.read_table(f).to_pylist()]
    loaded = load_dataset(repo, "default", revision="v0.0.1", split="train").to_list()
    assert loaded == rows, "rows differ"
    print("live ok", result.commit)
finally:
    HfApi().delete_repo(repo, repo_type="dataset", missing_ok=True)
"""


def test_push_to_the_real_hub(tiny_model: Path, tmp_path: Path) -> None:
    token, namespace = REAL_HF_TOKEN, os.environ.get("MAGPIE_HUB_TEST_NAMESPACE")
    if not token or not namespace:
        pytest.skip("set HF_TOKEN and MAGPIE_HUB_TEST_NAMESPACE to run against the real Hub")
    from magpie_hub.cli.main import main

    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=4))
    try:
        main(["generate", str(config), "--out", str(tmp_path / "build"), "--quiet"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_HUB_OFFLINE")}
    env["HF_TOKEN"] = token
    repo = f"{namespace}/magpie-hub-live-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "build"), repo],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "live ok" in proc.stdout
