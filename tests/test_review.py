"""The Argilla review loop against a real argilla-server (scripts/argilla-server.sh)."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magpie_hub.errors import ReviewError
from magpie_hub.review.settings import ab_order
from magpie_hub.review.sync import review_pull, review_push, review_status, stratified_sample
from magpie_hub.row_types import shard_schema

pytestmark = pytest.mark.argilla


def make_build(folder: Path, n: int, recipe: str = "magpie-ultra") -> Path:
    """A finished build of `recipe`'s schema (the review loop reads only the folder)."""
    from magpie_hub.plugins import get_registry

    features = get_registry().recipe(recipe).features
    keys = ["math", "coding", "coding", "advice"]  # 25% / 50% / 25%
    rows = []
    for i in range(n):
        instruction, answer = f"Question {i}?", f"Answer {i}."
        row: dict[str, Any] = {
            "uuid": str(uuid.UUID(int=i + 1)),
            "instruction": instruction,
            "response": answer,
            "response_base": f"Base answer {i}.",
            "conversation": [
                {"role": "user", "content": instruction},
                {"role": "assistant", "content": answer},
            ],
            "num_turns": 1,
            "system_prompt": None,
            "system_prompt_key": keys[i % 4],
            "model": "m",
            "model_base": "b",
            "pre_query_template": "<|im_start|>user\n",
            "base_note": None,
            "score": float(i % 3),
            "score_base": 1.0,
            "score_difference": float(i % 3) - 1.0,
            "score_error": None,
            "scorer": "reward-model",
            "gen_config": None,
        }
        rows.append({k: row.get(k) for k in features})
    (folder / "data").mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=shard_schema(features))
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
    manifest = {"status": "complete", "recipe": recipe, "counts": {"generated": n}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def name() -> str:
    return f"ds-{uuid.uuid4().hex[:8]}"


def respond(client: Any, dataset: str, workspace: str, answers: dict[str, list[tuple]]) -> None:
    """Log annotators' responses through the SDK as the owner (osmem cannot take an
    annotator's own single-response POST; stack-notes)."""
    import argilla as rg

    ds = client.datasets(dataset, workspace=workspace)
    users = {u.username: u.id for u in client.users}
    records = {str(r.id): r for r in ds.records()}
    updated = []
    for record_id, items in answers.items():
        record = records[record_id]
        for user, question, value, status in items:
            record.responses.add(rg.Response(question, value, user_id=users[user], status=status))
        updated.append(record)
    ds.records.log(updated)


def shown_as(uuid: str, column: str, seed: int = 0) -> str:
    """The letter under which a blind pair shows `column` ("response" / "response_base")."""
    return "A" if ab_order(uuid, seed) == column else "B"


def ratings(uuid: str, user: str, *, instruct: int, base: int) -> list[tuple]:
    """`user`'s rating_a / rating_b answers that rate the instruct and base answers so."""
    by_letter = {shown_as(uuid, "response"): instruct, shown_as(uuid, "response_base"): base}
    return [(user, f"rating_{x.lower()}", by_letter[x], "submitted") for x in ("A", "B")]


def test_push_two_annotators_then_pull_merges_the_reviews(argilla, tmp_path) -> None:
    build = make_build(tmp_path / "b", 6)
    dataset = name()
    pushed = review_push(build, dataset, workspace="w1", create_workspace=True)
    assert (pushed.added, pushed.already_there) == (6, 0)
    a, b, c = (str(uuid.UUID(int=i)) for i in (1, 2, 3))
    respond(
        argilla,
        dataset,
        "w1",
        {
            a: [
                ("annotator", "quality", 4, "submitted"),
                *ratings(a, "annotator", instruct=5, base=2),
                ("annotator", "preferred", shown_as(a, "response"), "submitted"),
                ("annotator2", "quality", 5, "submitted"),
                *ratings(a, "annotator2", instruct=4, base=1),
                ("annotator2", "preferred", shown_as(a, "response"), "submitted"),
                ("annotator2", "corrected_response", "A better answer.", "submitted"),
            ],
            b: [
                ("annotator", "quality", 2, "submitted"),
                *ratings(b, "annotator", instruct=2, base=3),
                ("annotator", "preferred", shown_as(b, "response_base"), "submitted"),
                ("annotator2", "quality", 3, "submitted"),
                *ratings(b, "annotator2", instruct=3, base=3),
                ("annotator2", "preferred", "tie", "submitted"),
            ],
            c: [("annotator", "quality", 1, "discarded")],
        },
    )
    status = review_status(dataset, workspace="w1")
    assert status["records"] == 6
    assert status["questions"]["quality"] == {"records_answered": 2, "of": 6}
    assert status["annotators"]["annotator"] == {"submitted": 2, "discarded": 1}
    pulled = review_pull(build, dataset, workspace="w1")
    assert (pulled.reviewed_rows, pulled.reviewers) == (3, 2)
    rows = {r["uuid"]: r for r in pq.read_table(build / "data/reviewed").to_pylist()}
    assert rows[a]["review_quality_mean"] == 4.5 and rows[a]["review_count"] == 2
    assert rows[a]["review_better"] == "response" and rows[a]["review_better_agreement"] == 1.0
    assert rows[a]["review_corrections"] == ["A better answer."]
    means = {
        u: (rows[u]["review_rating_instruct_mean"], rows[u]["review_rating_base_mean"])
        for u in (a, b)
    }
    assert means == {a: (4.5, 1.5), b: (2.5, 3.0)}
    assert rows[b]["review_quality_mean"] == 2.5 and rows[b]["review_better_agreement"] == 0.5
    assert rows[c]["review_discarded"] and rows[c]["review_quality_mean"] is None
    assert rows[a]["instruction"] == "Question 0?"  # the build's own columns come along
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["views"]["reviewed"] == {"rows": 3, "reviewers": 2}

    # Pull again after a record vanished from Argilla: its earlier review is kept.
    argilla.datasets(dataset, workspace="w1").records.delete(
        [r for r in argilla.datasets(dataset, workspace="w1").records() if str(r.id) == a]
    )
    again = review_pull(build, dataset, workspace="w1")
    assert again.reviewed_rows == 3
    rows = {r["uuid"]: r for r in pq.read_table(build / "data/reviewed").to_pylist()}
    assert rows[a]["review_quality_mean"] == 4.5


def test_repush_adds_nothing_and_other_settings_are_detected(argilla, tmp_path) -> None:
    import argilla as rg

    build = make_build(tmp_path / "b", 4)
    dataset = name()
    review_push(build, dataset, workspace="w2", create_workspace=True)
    again = review_push(build, dataset, workspace="w2")
    assert (again.added, again.already_there) == (0, 4)
    assert sum(1 for _ in argilla.datasets(dataset, workspace="w2").records()) == 4
    other = name()
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="ok", labels=["y", "n"])],
    )
    rg.Dataset(name=other, workspace="w2", settings=settings, client=argilla).create()
    with pytest.raises(ReviewError, match="different settings"):
        review_push(build, other, workspace="w2")


def test_stratified_sampling_keeps_the_proportions(argilla, tmp_path) -> None:
    rows = [{"uuid": str(i), "k": "a" if i % 4 == 0 else "b"} for i in range(400)]
    sample = stratified_sample(rows, 40, "k", seed=3)
    assert Counter(r["k"] for r in sample) == {"a": 10, "b": 30}
    assert stratified_sample(rows, 40, "k", seed=3) == sample  # the seed fixes it
    build = make_build(tmp_path / "b", 40)
    dataset = name()
    review_push(
        build,
        dataset,
        workspace="w3",
        create_workspace=True,
        sample=8,
        stratify_by="system_prompt_key",
        seed=1,
    )
    keys = Counter(
        r.metadata["system_prompt_key"] for r in argilla.datasets(dataset, workspace="w3").records()
    )
    assert keys == {"coding": 4, "math": 2, "advice": 2}


def test_clear_errors_for_server_key_and_workspace(argilla, tmp_path, monkeypatch) -> None:
    build = make_build(tmp_path / "b", 2)
    with pytest.raises(ReviewError, match="no workspace 'nowhere'") as missing:
        review_push(build, name(), workspace="nowhere")
    assert "--create-workspace" in (missing.value.hint or "")
    monkeypatch.setenv("ARGILLA_API_KEY", "wrong-key")
    with pytest.raises(ReviewError, match="rejected the API key"):
        review_push(build, name())
    monkeypatch.setenv("ARGILLA_API_URL", "http://127.0.0.1:9")
    with pytest.raises(ReviewError, match="cannot reach"):
        review_push(build, name())


def test_cli_review_commands(cli, argilla, tmp_path) -> None:
    build = make_build(tmp_path / "b", 3)
    dataset = name()
    pushed = cli(
        "review",
        "push",
        str(build),
        "--dataset",
        dataset,
        "--workspace",
        "w4",
        "--create-workspace",
        "--json",
    )
    assert pushed.exit_code == 0, pushed.stderr
    assert json.loads(pushed.stdout)["added"] == 3
    status = cli("review", "status", "--dataset", dataset, "--workspace", "w4", "--json")
    assert json.loads(status.stdout)["records"] == 3
    pulled = cli("review", "pull", str(build), "--dataset", dataset, "--workspace", "w4")
    assert pulled.exit_code == 0, pulled.stderr
    assert "reviewed rows" in pulled.stdout


@pytest.mark.slow
def test_a_thousand_record_push_completes(argilla, tmp_path) -> None:
    build = make_build(tmp_path / "b", 1000, recipe="magpie")
    dataset = name()
    result = review_push(build, dataset, workspace="w5", create_workspace=True)
    assert result.added == 1000
    assert sum(1 for _ in argilla.datasets(dataset, workspace="w5").records()) == 1000


def test_argilla_going_down_mid_push_then_a_rerun_pushes_only_the_rest(argilla, tmp_path) -> None:
    from tcp_proxy import TcpProxy

    from magpie_hub.review.sync import PUSH_BATCH, connect

    build = make_build(tmp_path / "b", PUSH_BATCH + 100, recipe="magpie")
    dataset = name()
    with TcpProxy(argilla.api_url) as proxy:
        client = connect(proxy.url, os.environ["ARGILLA_API_KEY"])

        def down_after_the_first_batch(done: int, total: int) -> None:
            proxy.cut()

        with pytest.raises(ReviewError) as caught:
            review_push(
                build,
                dataset,
                workspace="w8",
                create_workspace=True,
                client=client,
                on_progress=down_after_the_first_batch,
            )
    message = str(caught.value)
    assert f"stopped answering after {PUSH_BATCH} of {PUSH_BATCH + 100} new records" in message
    assert "re-run the same command" in (caught.value.hint or "")
    again = review_push(build, dataset, workspace="w8")
    assert (again.added, again.already_there) == (100, PUSH_BATCH)
    assert sum(1 for _ in argilla.datasets(dataset, workspace="w8").records()) == PUSH_BATCH + 100


def test_a_plugin_recipe_reviews_with_its_own_settings(argilla, with_plugins, tmp_path) -> None:
    build = make_build(tmp_path / "b", 3, recipe="instructions-only")
    dataset = name()
    assert review_push(build, dataset, workspace="w6", create_workspace=True).added == 3
    ds = argilla.datasets(dataset, workspace="w6")
    assert [f.name for f in ds.settings.fields] == ["instruction"]
    assert sorted(r.fields["instruction"] for r in ds.records()) == [
        "Question 0?",
        "Question 1?",
        "Question 2?",
    ]


def test_curation_tags_become_metadata_and_suggestions(argilla, tmp_path) -> None:
    """A curated build pushed with suggestions: tags are filterable metadata; the judge's
    quality and category are pre-filled as suggestions, credited to the judge model."""
    from curate_helpers import make_build as make_curated

    build = make_curated(
        tmp_path / "b",
        ["What is 2 + 2?", "Write a haiku about rain."],
        input_quality=["good", "very poor"],
        task_category=["Math", "Creative writing"],
        quality_generator=["judge/m", "judge/m"],
        task_category_generator=["judge/m", "judge/m"],
        language=["EN", "EN"],
    )
    dataset = name()
    review_push(build, dataset, workspace="w7", create_workspace=True, suggestions=True)
    ds = argilla.datasets(dataset, workspace="w7")
    assert {"input_quality", "task_category", "language"} <= {m.name for m in ds.settings.metadata}
    records = {r.id: r for r in ds.records(with_suggestions=True)}
    math = records["row-0000"]
    assert math.metadata["input_quality"] == "good" and math.metadata["task_category"] == "Math"
    suggested = {s.question_name: (s.value, s.agent) for s in math.suggestions}
    assert suggested["quality"] == (4, "judge/m")
    assert suggested["category"] == ("Math", "judge/m")
    poem = {s.question_name: s.value for s in records["row-0001"].suggestions}
    assert poem["quality"] == 1


@pytest.mark.slow
def test_kill_9_mid_push_then_a_rerun_pushes_each_row_once(argilla, tmp_path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    from magpie_hub.review.sync import PUSH_BATCH

    total = 3 * PUSH_BATCH
    build = make_build(tmp_path / "b", total, recipe="magpie")
    dataset = name()
    command = [sys.executable, "-m", "magpie_hub", "review", "push", str(build),
               "--dataset", dataset, "--workspace", "w9", "--create-workspace"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    seen = 0
    while time.monotonic() < deadline and proc.poll() is None:
        ds = argilla.datasets(dataset, workspace="w9") if argilla.workspaces("w9") else None
        seen = sum(1 for _ in ds.records()) if ds is not None else 0
        if seen >= PUSH_BATCH:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert PUSH_BATCH <= seen < total, f"killed too late to test anything ({seen} of {total})"
    again = review_push(build, dataset, workspace="w9")
    assert again.added + again.already_there == total
    ids = [str(r.id) for r in argilla.datasets(dataset, workspace="w9").records()]
    assert len(ids) == len(set(ids)) == total
