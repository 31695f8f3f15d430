"""An annotator reviews in Argilla's own UI (headless chromium), then `review pull` has it.

The UI part discovers the questions on the page (`[aria-label="Question: NAME"]` in the
annotation form) and answers each by its widget: a rating or a label gets a click on an
option not selected yet, a text is replaced by a marker text (a pre-filled one too), a
ranking gets every item placed with the keyboard. Renamed or added questions need no
change here. Screenshots before and after Submit go to MAGPIE_HUB_TEST_ARTIFACTS (default
test-artifacts/ at the repository root).

Needs /usr/bin/chromium and playwright (scripts/install-browser.sh) besides the server.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_review import make_build, name

pytestmark = [pytest.mark.argilla, pytest.mark.slow]

REPO = Path(__file__).parent.parent
ERROR_TOAST = "An error occurred"


def artifacts(test: str) -> Path:
    root = Path(os.environ.get("MAGPIE_HUB_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder = root / "review-browser" / test
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def annotator_password(server: dict[str, str], user: str) -> str:
    """The password scripts/argilla-server.sh keeps in its home, else the one the `argilla`
    fixture gives annotators it creates (MAGPIE_HUB_ARGILLA_PASSWORD overrides both)."""
    if os.environ.get("MAGPIE_HUB_ARGILLA_PASSWORD"):
        return os.environ["MAGPIE_HUB_ARGILLA_PASSWORD"]
    kept = Path(server["home"]) / f"{user}.password" if server.get("home") else None
    return kept.read_text().strip() if kept and kept.exists() else f"password-{user}"


def ensure_member(client: Any, workspace: str, user: str) -> None:
    ws = client.workspaces(workspace)
    if user not in {u.username for u in ws.users}:
        ws.add_user(user)


def sign_in(page: Any, url: str, user: str, password: str) -> None:
    page.goto(f"{url}/sign-in")
    page.locator("input[name=Username]").fill(user)
    page.locator("input[name=Password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda u: "sign-in" not in u, timeout=20_000)


def checked(box: Any) -> list[str]:
    """The options selected in a rating or label question (input names, page order)."""
    return [
        el.get_attribute("name")
        for el in box.locator("input[type=checkbox]").all()
        if el.is_checked()
    ]


def answer_question(page: Any, box: Any, question: str, marker: str) -> Any:
    """Answer one question through its widget; the answer as the page then shows it."""
    if box.locator(".draggable").count():  # ranking: each card to the next slot (keys 1-9)
        cards = box.locator(".draggable__questions-container [title]")
        placed = [card.get_attribute("title") for card in cards.all()]
        assert len(placed) <= 9, f"{question}: more values than number keys"
        for rank, title in enumerate(placed, 1):
            slotted = box.locator(f'.draggable__slots-container [title="{title}"]')
            for _ in range(20):  # the widget takes a key only once it has seen the focus
                box.locator(f'[title="{title}"]').first.focus()
                page.wait_for_timeout(100)
                page.keyboard.press(str(rank))
                page.wait_for_timeout(100)
                if slotted.count():
                    break
            assert slotted.count(), f"{question}: {title!r} did not go to slot {rank}"
        return placed
    editable = box.locator("[contenteditable=true]")
    textbox = box.locator("[role=textbox]")
    if editable.count() or textbox.count():  # text, pre-filled or not: replaced
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        shown = None
        for _ in range(5):
            try:
                if not editable.count():
                    textbox.first.click(timeout=5_000)  # markdown shows a rendering until clicked
                editable.first.click(timeout=5_000)
            except PlaywrightTimeout:  # the editor was re-rendered under the click: again
                continue
            page.keyboard.press("Control+A")
            page.keyboard.type(marker)
            # Editing a suggestion opens a "Write" tab with a new editor after the first
            # key, which loses the rest: then type again, into that one.
            page.wait_for_timeout(200)
            shown = (editable if editable.count() else textbox).first.inner_text().strip()
            if shown == marker:
                return marker
        raise AssertionError(f"{question}: the text reads {shown!r}, not {marker!r}")
    options = box.locator("input[type=checkbox]")
    if options.count():  # rating, label, multi-label: click an option not selected yet
        before = set(checked(box))
        names = [el.get_attribute("name") for el in options.all()]
        choice = next(n for n in [*names[3:], *reversed(names[:3])] if n not in before)
        box.locator(f'label[for="{question}_{choice}"]').click()
        shown = checked(box)
        assert choice in shown, f"{question}: clicking {choice!r} left {shown}"
        return shown
    raise AssertionError(f"question {question!r}: a widget this test does not know")


def answer_every_question(page: Any, marker: str) -> dict[str, Any]:
    form = page.locator('form[aria-label="Annotation Questions"]')
    boxes = form.locator('[aria-label^="Question: "]')
    boxes.first.wait_for()
    answers = {}
    for n, box in enumerate(boxes.all(), 1):
        question = (box.get_attribute("aria-label") or "").removeprefix("Question: ")
        answers[question] = answer_question(page, box, question, f"{marker}, question {n}.")
    return answers


def submitted_counter(page: Any) -> Any:
    counters = page.locator("li.status-counter").filter(has_text=re.compile("submitted", re.I))
    return counters.first.locator(".status-counter__counter")


def as_stored(kind: str, shown: Any) -> Any:
    """What the page showed, as the SDK gives the stored answer back."""
    if kind == "rating":
        return int(shown[0])
    if kind == "label_selection":
        return shown[0]
    return shown  # multi_label_selection, ranking: lists; text: the string


def reviewed_rows(build: Path) -> list[dict[str, Any]]:
    folder = build / "data" / "reviewed"
    rows: list[dict[str, Any]] = []
    if list(folder.rglob("*.parquet")):
        rows += pq.read_table(folder).to_pylist()
    for path in sorted(folder.rglob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def annotate_in_the_browser(
    page: Any, server: dict[str, str], ds: Any, shots: Path
) -> tuple[Any, dict[str, Any]]:
    """As `annotator`: open `ds`, answer every question shown, Submit, check the page.

    Returns the record answered (as the SDK lists it) and the answers as the page showed
    them, after checking that the SDK reads each back as stored."""
    from playwright.sync_api import expect

    kinds = {q.name: q.type for q in ds.settings.questions}
    failures: list[str] = []
    page.on(
        "response",
        lambda r: (
            failures.append(f"{r.status} {r.request.method} {r.url}")
            if "/api/" in r.url and r.status >= 500
            else None
        ),
    )
    url = server["url"]
    sign_in(page, url, "annotator", annotator_password(server, "annotator"))
    page.goto(f"{url}/dataset/{ds.id}/annotation-mode")
    counter = submitted_counter(page)
    expect(counter).to_have_text("0", timeout=20_000)

    marker = f"Edited in the browser {uuid.uuid4().hex[:8]}"
    answers = answer_every_question(page, marker)
    assert set(answers) == set(kinds), "the page shows every question of the dataset"
    page.screenshot(path=str(shots / "1-answered-before-submit.png"), full_page=True)

    submit = page.locator("form[aria-label='Annotation Questions'] button[type=submit]")
    expect(submit).to_be_enabled()
    with page.expect_response(
        lambda r: "/responses" in r.url and r.request.method in ("POST", "PUT")
    ) as sent:
        submit.click()
    response = sent.value
    try:
        assert response.ok, f"Submit: HTTP {response.status} {response.text()[:500]}"
        expect(counter).to_have_text("1", timeout=20_000)  # the progress counter advanced
        page.wait_for_timeout(500)  # a toast would show by now
        assert page.get_by_text(ERROR_TOAST).count() == 0, "an error toast after Submit"
        assert not failures, failures
    finally:
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "2-after-submit.png"), full_page=True)

    # Stored as answered: the SDK reads back each answer as the page showed it.
    record_id = response.json()["record_id"]
    record = next(r for r in ds.records(with_responses=True) if str(r._server_id) == record_id)
    mine = {r.question_name: r.value for r in record.responses if r.status == "submitted"}
    for question, shown in answers.items():
        assert mine.get(question) == as_stored(kinds[question], shown), question
    return record, answers


@pytest.mark.parametrize("recipe", ["magpie-ultra", "magpie"])
def test_an_annotator_submits_in_the_browser_and_pull_has_it(
    recipe, argilla, argilla_server, cli, page, tmp_path
) -> None:
    build = make_build(tmp_path / "b", 3, recipe=recipe)
    dataset, workspace = name(), "browser"
    pushed = cli(
        "review",
        "push",
        str(build),
        "--dataset",
        dataset,
        "--workspace",
        workspace,
        "--create-workspace",
        "--json",
    )
    assert pushed.exit_code == 0, pushed.stderr
    members = {u.username for u in argilla.workspaces(workspace).users}
    assert "annotator" in members  # review push made the annotators members
    ds = argilla.datasets(dataset, workspace=workspace)
    kinds = {q.name: q.type for q in ds.settings.questions}

    record, answers = annotate_in_the_browser(page, argilla_server, ds, artifacts(recipe))

    pulled = cli("review", "pull", str(build), "--dataset", dataset, "--workspace", workspace)
    assert pulled.exit_code == 0, pulled.stderr
    rows = {str(r["uuid"]): r for r in reviewed_rows(build)}
    assert str(record.id) in rows, f"the reviewed view lacks {record.id}: {sorted(rows)}"
    row = rows[str(record.id)]
    if "review_count" in row:
        assert row["review_count"] == 1
    for question, kind in kinds.items():
        if kind == "text":  # typed text comes through (corrections)
            assert answers[question] in json.dumps(row, default=str), question
        column = f"review_{question}_mean"  # a rating with a mean column of its own
        if kind == "rating" and column in row:
            assert row[column] == as_stored(kind, answers[question]), column


def test_the_ui_driver_answers_every_widget_kind(argilla, argilla_server, page) -> None:
    """Each question type the review settings may use, with and without a pre-filled value,
    so that a question added to a recipe finds a driver here already."""
    import argilla as rg

    workspace = "browser-widgets"
    if argilla.workspaces(workspace) is None:
        rg.Workspace(name=workspace, client=argilla).create()
    ensure_member(argilla, workspace, "annotator")
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[
            rg.RatingQuestion(name="quality", values=[1, 2, 3, 4, 5]),
            rg.LabelQuestion(name="preferred", labels=["A", "B", "tie"]),
            rg.MultiLabelQuestion(name="tags", labels=["x", "y", "z"], required=False),
            rg.RankingQuestion(name="order", values=["first", "second", "third"]),
            rg.TextQuestion(name="corrected_response", use_markdown=True),
            rg.TextQuestion(name="note", required=False),
        ],
    )
    ds = rg.Dataset(name=name(), workspace=workspace, settings=settings, client=argilla)
    ds.create()
    ds.records.log(
        [
            rg.Record(
                fields={"text": f"Text {i}."},
                suggestions=[
                    rg.Suggestion("corrected_response", f"Pre-filled {i}."),
                    rg.Suggestion("quality", 4),
                    rg.Suggestion("preferred", "B"),
                ],
            )
            for i in range(2)
        ]
    )
    _, answers = annotate_in_the_browser(page, argilla_server, ds, artifacts("widgets"))
    assert answers["quality"] != ["4"] and answers["preferred"] != ["B"]  # changed, not kept
    assert sorted(answers["order"]) == ["first", "second", "third"]
    assert answers["corrected_response"].startswith("Edited in the browser")
