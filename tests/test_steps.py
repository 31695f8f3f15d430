"""Instruction checks and per-row seeds."""

from __future__ import annotations

import pytest

from magpie_hub.steps import check_instruction, row_seed, row_uuid


@pytest.mark.parametrize(
    ("raw", "finish", "expected"),
    [
        ("  How do I sort a list in Python?  ", "stop", ("How do I sort a list in Python?", None)),
        ("", "stop", (None, "empty")),
        ("   \n ", "stop", (None, "empty")),
        ("<|im_start|>", "stop", (None, "only_markup")),
        ("<|im_end|>\n<|im_start|>assistant", "stop", (None, "only_markup")),
        ("assistant\nSure, here is", "stop", (None, "role_marker")),
        ("User:\nWhat?", "stop", (None, "role_marker")),
        ("What is 2+2?<|im_end|>\n<|im_start|>assistant", "stop", ("What is 2+2?", None)),
        ("Tell me a long story about", "length", (None, "truncated")),
        ("How do I boil an egg?\n\nAssistant:", "stop", ("How do I boil an egg?", None)),
        ("Line one.\nLine two?\nassistant", "stop", ("Line one.\nLine two?", None)),
        (None, None, (None, None)),
    ],
)
def test_check_instruction(raw, finish, expected) -> None:  # type: ignore[no-untyped-def]
    assert check_instruction(raw, finish) == expected


def test_row_seed_is_stable_and_distinct() -> None:
    assert row_seed(42, 3, "instruction") == row_seed(42, 3, "instruction")
    seeds = {row_seed(42, i, "instruction") for i in range(1000)}
    assert len(seeds) == 1000
    assert row_seed(42, 3, "instruction") != row_seed(42, 3, "response")
    assert row_uuid("abc", 1) == row_uuid("abc", 1) != row_uuid("abc", 2)


def test_row_indices_are_sent_in_batches_from_runs() -> None:
    from magpie_hub.steps import RowIndices, index_ranges

    assert index_ranges([5, 0, 1, 2, 7, 6]) == [[0, 3], [5, 8]]
    step = RowIndices(name="rows", ranges=index_ranges([0, 1, 2, 5, 6, 7, 9]), batch_size=3)
    step.load()
    batches = list(step.process())
    assert [[r["row_index"] for r in b] for b, _ in batches] == [[0, 1, 2], [5, 6, 7], [9]]
    assert [last for _, last in batches] == [False, False, True]
    resumed = list(step.process(offset=4))  # distilabel's offset: rows already sent
    assert [[r["row_index"] for r in b] for b, _ in resumed] == [[6, 7, 9]]
    assert resumed[-1][1] is True


def test_index_runs_round_trip() -> None:
    import numpy as np

    from magpie_hub.steps import mask_runs, runs_mask

    mask = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], bool)
    assert mask_runs(mask) == [[0, 2], [4, 5], [6, 9]]
    assert (runs_mask(mask_runs(mask), 9) == mask).all()
    assert mask_runs(np.zeros(3, bool)) == [] and mask_runs(np.ones(3, bool)) == [[0, 3]]
