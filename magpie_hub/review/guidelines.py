"""Guidelines and question texts for reviewers, written from the recipe being reviewed.

The rating scale is Magpie's input-quality scale (magpie-facts section 5), so a reviewer's
`quality` and the judge's `input_quality` mean the same thing and can be compared.
"""

from __future__ import annotations

from magpie_hub.registry import ReviewOptions

QUALITY_SCALE = {
    1: "very poor: unclear, vague or incoherent; essential context is missing",
    2: "poor: somewhat unclear, or missing important details",
    3: "average: moderately clear and specific; may need some clarification",
    4: "good: clear, specific and mostly well-formed",
    5: "excellent: very clear, specific and well-articulated; all the context needed",
}
ANSWER_SCALE = {
    1: "wrong, harmful or off-topic",
    2: "partly right, with serious errors or omissions",
    3: "acceptable, but could be clearly better",
    4: "correct and helpful, with small flaws",
    5: "correct, complete and well written",
}


def _scale(scale: dict[int, str]) -> str:
    return "\n".join(f"- **{value}**: {text}" for value, text in scale.items())


QUALITY_DESCRIPTION = "Rate the user's instruction (not the answer).\n\n" + _scale(QUALITY_SCALE)
ANSWER_DESCRIPTION = "Rate this answer to the instruction.\n\n" + _scale(ANSWER_SCALE)
CORRECTION_SINGLE = (
    "The answer is pre-filled: edit it into the answer you would want a model to learn. "
    "Leave it unchanged when it is already good."
)
CORRECTION_PAIR = "Optional: an answer better than both, written or edited by you."
CATEGORY_DESCRIPTION = "Optional: the task's category (what the user asks for)."
PREFERRED_DESCRIPTION = "Which answer is better overall? Pick tie only when they are equally good."


def single_guidelines(options: ReviewOptions) -> str:
    return "\n\n".join(
        [
            _intro(options),
            "## What to check\n"
            "1. Read the instruction: is it clear, answerable and safe to answer?\n"
            "2. Read the answer: is it correct, complete and helpful? Check facts and code.\n"
            "3. Edit the pre-filled answer when it can be better; keep it when it is good.\n"
            "4. Discard a record whose instruction is broken (empty, truncated, not a "
            "request); say why in the answer box if you can.",
            "## quality (the instruction)\n" + _scale(QUALITY_SCALE),
            _suggestion_note(options),
        ]
    )


def pair_guidelines(options: ReviewOptions) -> str:
    return "\n\n".join(
        [
            _intro(options),
            "## What to check\n"
            "Each record shows one instruction and two answers, **A** and **B**, from two "
            "different models. Which model wrote which is hidden and changes from record to "
            "record: judge the text only.\n"
            "1. Rate the instruction (quality).\n"
            "2. Rate answer A and answer B on their own (rating_a, rating_b).\n"
            "3. Choose the better one (preferred), or tie.",
            "## quality (the instruction)\n" + _scale(QUALITY_SCALE),
            "## rating_a, rating_b (each answer)\n" + _scale(ANSWER_SCALE),
            _suggestion_note(options),
        ]
    )


def _intro(options: ReviewOptions) -> str:
    what = f" ({options.recipe_description})" if options.recipe_description else ""
    people = (
        f"Each record needs {options.min_submitted} reviews from different people; "
        "answer on your own, without asking the others."
        if options.min_submitted > 1
        else "Each record needs one review."
    )
    return (
        f"# Reviewing `{options.recipe or 'this'}` data\n"
        f"These rows are synthetic instruction data made by magpie-hub's "
        f"`{options.recipe or 'unknown'}` recipe{what}. {people}"
    )


def _suggestion_note(options: ReviewOptions) -> str:
    if options.suggestions:
        return (
            "## Pre-filled answers\n"
            "Some answers are pre-selected from an automatic judge or scorer. Check each "
            "one: change it whenever you disagree."
        )
    return (
        "## No hints\n"
        "Automatic labels are hidden on purpose, so that your answers can measure how far "
        "they can be trusted."
    )
