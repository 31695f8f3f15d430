"""Agreement, blind-pair mapping and guidelines, without a server (hand-checked numbers)."""

from __future__ import annotations

from collections import Counter

import pytest

from magpie_hub.registry import ReviewOptions
from magpie_hub.review.agreement import alpha, machine_labels, majority, report
from magpie_hub.review.guidelines import pair_guidelines, single_guidelines
from magpie_hub.review.settings import ab_order, pair_record, single_record
from magpie_hub.review.view import aggregate, human_answers


def test_nominal_alpha_on_a_hand_checked_example() -> None:
    # Units (a,a) (a,b) (b,b) (b,b): coincidences o_aa=2, o_ab=o_ba=1, o_bb=4; n_a=3,
    # n_b=5, n=8. D_o = 2/8; D_e = 2*3*5/(8*7) = 30/56; alpha = 1 - (1/4)/(30/56) = 8/15.
    assert alpha([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]) == pytest.approx(8 / 15, 1e-4)


def test_interval_alpha_on_a_hand_checked_example() -> None:
    # Units (1,2) (3,3) (5,4): pairable values 1,2,3,3,5,4 (n=6, mean 3, squared deviations
    # summing to 10). D_o = (1+1+0+0+1+1)/6 = 2/3. D_e = sum over ordered value pairs of
    # (c-k)^2 / (n(n-1)) = 2*6*10 / 30 = 4. alpha = 1 - (2/3)/4 = 5/6.
    assert alpha([[1, 2], [3, 3], [5, 4]], "interval") == pytest.approx(5 / 6, abs=1e-4)
    assert alpha([[1, 5], [5, 1]], "interval") < 0  # systematic disagreement


def test_alpha_is_undefined_without_pairs_or_variation() -> None:
    assert alpha([["a"], ["b"]]) is None  # nobody answered a record twice
    assert alpha([["a", "a"], ["a", "a"]]) is None  # one value throughout
    assert alpha([["a", "a"], ["b", "b"]]) == 1.0
    assert majority(["x", "y", "y"]) == ("y", 0.6667)
    assert majority([]) == (None, None)


def test_the_stored_order_maps_a_and_b_back_to_instruct_and_base() -> None:
    uuids = [f"u{i}" for i in range(200)]
    orders = Counter(ab_order(u, 7) for u in uuids)
    assert set(orders) == {"response", "response_base"} and min(orders.values()) > 70
    assert [ab_order(u, 7) for u in uuids] == [ab_order(u, 7) for u in uuids]  # stable
    assert [ab_order(u, 7) for u in uuids] != [ab_order(u, 8) for u in uuids]  # seeded
    row = {
        "uuid": "u1",
        "conversation": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "I"}],
        "instruction": "Q?",
        "response": "instruct answer",
        "response_base": "base answer",
        "score_difference": 1.5,
        "scorer": "rm",
    }
    record = pair_record(row, ReviewOptions(seed=7))
    a_is = record["metadata"]["ab_order"]
    assert record["fields"]["answer_a"] == row[a_is]
    assert record["suggestions"] == []  # the scorer's choice stays hidden by default
    shown = pair_record(row, ReviewOptions(seed=7, suggestions=True))["suggestions"]
    assert shown == [("preferred", "A" if a_is == "response" else "B", "rm")]
    # Reviewer picks the letter showing the base answer and rates it 5, the other 2.
    base_letter = "A" if a_is == "response_base" else "B"
    responses = [
        {"uuid": "u1", "user": "x", "question": "preferred", "value": base_letter},
        {"uuid": "u1", "user": "x", "question": f"rating_{base_letter.lower()}", "value": 5},
        {
            "uuid": "u1",
            "user": "x",
            "question": "rating_" + "ab".replace(base_letter.lower(), ""),
            "value": 2,
        },
    ]
    responses = [{**r, "status": "submitted", "ab_order": a_is} for r in responses]
    review = aggregate(responses)
    assert review["review_better"] == "response_base"
    assert (review["review_rating_base_mean"], review["review_rating_instruct_mean"]) == (5.0, 2.0)
    assert {a["question"] for a in review["review_answers"]} == {
        "preferred",
        "rating_base",
        "rating_instruct",
    }


def test_machine_labels_against_the_human_majority() -> None:
    machine = {
        "r1": machine_labels({"input_quality": "good", "task_category": "Math"}),
        "r2": machine_labels({"input_quality": "poor", "task_category": "Coding & Debugging"}),
        "r3": machine_labels({"score_difference": -0.5}),
    }
    assert machine["r1"] == {"quality": 4, "category": "Math"}
    assert machine["r3"] == {"preferred": "response_base"}
    answers = [
        ("r1", "x", "quality", 4),
        ("r1", "y", "quality", 4),
        ("r2", "x", "quality", 4),
        ("r2", "y", "quality", 4),
        ("r1", "x", "category", "Math"),
        ("r2", "x", "category", "Math"),
        ("r3", "x", "preferred", "response_base"),
    ]
    got = report(answers, machine)
    assert got["between_reviewers"]["quality"] == {
        "alpha": None,  # everyone said 4: no variation, alpha undefined
        "metric": "interval",
        "records": 2,
        "answers": 4,
    }
    assert got["machine_vs_humans"]["quality"]["agreement"] == 0.5  # r1 yes, r2 no
    assert got["machine_vs_humans"]["quality"]["rows"] == 2
    assert got["machine_vs_humans"]["category"]["agreement"] == 0.5
    assert got["machine_vs_humans"]["preferred"] == {"agreement": 1.0, "alpha": None, "rows": 1}


def test_single_records_prefill_the_answer_and_hide_the_judge() -> None:
    row = {
        "uuid": "u",
        "conversation": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
        "input_quality": "good",
        "task_category": "Math",
    }
    assert single_record(row, ReviewOptions())["suggestions"] == [
        ("corrected_response", "A.", "response")
    ]
    with_judge = single_record(row, ReviewOptions(suggestions=True))["suggestions"]
    assert ("quality", 4, "judge") in with_judge


def test_guidelines_explain_the_scales_and_the_blinding() -> None:
    single = single_guidelines(ReviewOptions(recipe="magpie", min_submitted=2))
    assert "**1**: very poor" in single and "**5**: excellent" in single
    assert "2 reviews from different people" in single and "`magpie`" in single
    pair = pair_guidelines(ReviewOptions(recipe="magpie-ultra"))
    assert "A" in pair and "hidden" in pair and "rating_a" in pair


def test_only_submitted_answers_count() -> None:
    responses = [
        {"uuid": "u", "user": "x", "question": "quality", "value": 3, "status": "draft"},
        {"uuid": "u", "user": "y", "question": "quality", "value": 5, "status": "submitted"},
        {"uuid": "u", "user": "y", "question": "category", "value": "", "status": "submitted"},
    ]
    assert list(human_answers(responses)) == [("u", "y", "quality", 5)]
