"""A team reviewing in Argilla: onboarding, overlap (--min-submitted), blind pairs, keys."""

from __future__ import annotations

import os

import httpx
import pytest
from test_review import make_build, name, respond

from magpie_hub.errors import ReviewError
from magpie_hub.review.settings import ab_order
from magpie_hub.review.sync import review_progress, review_pull, review_push, review_status

pytestmark = pytest.mark.argilla


def api(path: str, key: str | None = None) -> httpx.Response:
    url = os.environ["ARGILLA_API_URL"].rstrip("/") + path
    return httpx.get(url, headers={"X-Argilla-Api-Key": key or os.environ["ARGILLA_API_KEY"]})


def queue(dataset_id: object, user: str) -> int:
    """How many records wait in `user`'s Pending queue (the UI's own search)."""
    pending = [
        {"type": "terms", "scope": {"entity": e, "property": "status"}, "values": ["pending"]}
        for e in ("record", "response")
    ]
    base = os.environ["ARGILLA_API_URL"].rstrip("/")
    url = f"{base}/api/v1/me/datasets/{dataset_id}/records/search"
    got = httpx.post(
        url, json={"filters": {"and": pending}}, headers={"X-Argilla-Api-Key": key_of(user)}
    )
    got.raise_for_status()
    return int(got.json()["total"])


def key_of(username: str) -> str:
    users = api("/api/v1/users").json()["items"]
    return next(u["api_key"] for u in users if u["username"] == username)


def members(client, workspace: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {u.username for u in client.workspaces(workspace).users}


def test_push_makes_the_annotators_members_and_a_list_narrows_it(argilla, tmp_path) -> None:
    build = make_build(tmp_path / "b", 2, recipe="magpie")
    t1, t2 = name(), name()  # new workspaces, whatever earlier runs left on the server
    first = review_push(build, name(), workspace=t1, create_workspace=True)
    assert {"annotator", "annotator2"} <= set(first.members_added)
    assert {"annotator", "annotator2"} <= members(argilla, t1)
    assert "owner" not in first.members_added  # owners see every workspace anyway
    again = review_push(build, name(), workspace=t1)
    assert again.members_added == []
    only = review_push(
        build, name(), workspace=t2, create_workspace=True, annotators=["annotator2"]
    )
    assert only.members_added == ["annotator2"]
    assert "annotator" not in members(argilla, t2)
    with pytest.raises(ReviewError, match="no user 'nobody'") as caught:
        review_push(build, name(), workspace=t2, annotators=["nobody"])
    assert "annotator2" in (caught.value.hint or "")
    # A member sees the dataset through the annotator's own API (what the UI lists).
    seen = api("/api/v1/me/datasets", key_of("annotator2")).json()["items"]
    assert {d["name"] for d in seen} >= {only.dataset}


def test_two_reviewers_per_record_and_their_agreement(argilla, tmp_path) -> None:
    build = make_build(tmp_path / "b", 3, recipe="magpie")
    dataset = name()
    pushed = review_push(build, dataset, workspace="t3", create_workspace=True, min_submitted=2)
    ds = argilla.datasets(dataset, workspace="t3")
    assert ds.settings.distribution.min_submitted == 2
    ids = [str(r.id) for r in ds.records()]

    def pending(user: str) -> int:
        return queue(ds.id, user)

    assert pending("annotator") == pending("annotator2") == 3
    # Hand-checked: quality (1,2) (3,3) (5,4) gives interval alpha 5/6 (test_review_agreement).
    first = {ids[0]: 1, ids[1]: 3, ids[2]: 5}
    second = {ids[0]: 2, ids[1]: 3, ids[2]: 4}
    respond(
        argilla,
        dataset,
        "t3",
        {i: [("annotator", "quality", q, "submitted")] for i, q in first.items()},
    )
    assert pending("annotator") == 0
    assert pending("annotator2") == 3  # each record still waits for a second person
    assert review_status(dataset, workspace="t3")["completed"] == 0
    respond(
        argilla,
        dataset,
        "t3",
        {i: [("annotator2", "quality", q, "submitted")] for i, q in second.items()},
    )
    status = review_status(dataset, workspace="t3")
    assert (status["completed"], status["records"], status["min_submitted"]) == (3, 3, 2)
    progress = review_progress(dataset, workspace="t3")  # what `review watch` polls
    assert progress == {"total": 3, "completed": 3, "pending": 0}
    quality = status["agreement"]["between_reviewers"]["quality"]
    assert quality == {
        "alpha": pytest.approx(5 / 6, abs=1e-4),
        "metric": "interval",
        "records": 3,
        "answers": 6,
    }
    review_pull(build, dataset, workspace="t3")
    import json

    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["review"]["agreement"]["between_reviewers"]["quality"]["records"] == 3
    from magpie_hub_plugins.card_review import human_review

    from magpie_hub.release.card import CardContext

    section = human_review(CardContext(build, manifest, {}, "team/ds", None)) or ""
    assert "3 rows were reviewed by 2 people" in section
    assert "| instruction quality (judge `input_quality`) | 0.83 | interval | 3 |" in section
    assert pushed.added == 3


def test_one_reviewer_per_record_takes_it_out_of_every_queue(argilla, tmp_path) -> None:
    build = make_build(tmp_path / "b", 2, recipe="magpie")
    dataset = name()
    review_push(build, dataset, workspace="t4", create_workspace=True)
    ds = argilla.datasets(dataset, workspace="t4")
    respond(
        argilla,
        dataset,
        "t4",
        {str(r.id): [("annotator", "quality", 3, "submitted")] for r in ds.records()},
    )
    assert queue(ds.id, "annotator2") == 0
    assert review_status(dataset, workspace="t4")["completed"] == 2


def test_blind_pairs_hide_which_model_wrote_which(argilla, tmp_path) -> None:
    build = make_build(tmp_path / "b", 8)
    dataset = name()
    review_push(build, dataset, workspace="t5", create_workspace=True, seed=3)
    ds = argilla.datasets(dataset, workspace="t5")
    assert [f.name for f in ds.settings.fields] == ["prompt", "answer_a", "answer_b"]
    orders = set()
    for record in ds.records():
        a_is = record.metadata["ab_order"]
        assert a_is == ab_order(str(record.id), 3)
        i = int(str(record.id).replace("-", ""), 16) - 1
        instruct, base = f"Answer {i}.", f"Base answer {i}."
        want = (instruct, base) if a_is == "response" else (base, instruct)
        assert (record.fields["answer_a"], record.fields["answer_b"]) == want
        assert not record.suggestions  # the scorer's choice is not pre-selected
        orders.add(a_is)
    assert orders == {"response", "response_base"}
    visible = api(f"/api/v1/me/datasets/{ds.id}/metadata-properties", key_of("annotator")).json()
    names = {m["name"] for m in visible["items"]}
    assert "ab_order" not in names and "score_difference" not in names
    assert "system_prompt_key" in names


def test_status_with_an_annotator_key_is_one_clear_message(
    cli, argilla, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("ARGILLA_API_KEY", key_of("annotator"))
    result = cli("review", "status", "--dataset", "anything", "--workspace", "t1")
    assert result.exit_code == 1
    assert "belongs to 'annotator', an annotator" in result.stderr
    assert "owner" in result.stderr and "Traceback" not in result.stderr
