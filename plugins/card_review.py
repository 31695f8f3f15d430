"""Card section for reviewed builds (`magpie-hub review pull`): who reviewed, how far the
reviewers agree, and how far the machine labels agree with them.

Numbers come from manifest.json's `review` record, written by the last pull; a build never
pulled gets no section.
"""

from __future__ import annotations

from collections.abc import Callable

from magpie_hub.hookspecs import hookimpl
from magpie_hub.registry import CardSection
from magpie_hub.release.card import CardContext

LABELS = {
    "quality": "instruction quality (judge `input_quality`)",
    "category": "task category (judge `task_category`)",
    "preferred": "preferred answer (pair scorer)",
    "rating_instruct": "rating of the instruct answer",
    "rating_base": "rating of the base answer",
}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def human_review(ctx: CardContext) -> str | None:
    review = ctx.manifest.get("review")
    if not review:
        return None
    agreement = review.get("agreement") or {}
    between = agreement.get("between_reviewers") or {}
    versus = agreement.get("machine_vs_humans") or {}
    lines = [
        f"{review['reviewed_rows']} rows were reviewed by {review['reviewers']} people in "
        f"Argilla (dataset `{review['dataset']}`); their answers are in the `reviewed` config "
        "(`review_*` columns: the majority and each reviewer's answer, beside the machine tags).",
    ]
    if between:
        lines += [
            "",
            "Agreement between reviewers (Krippendorff's alpha; n/a when undefined):",
            "",
            "| question | alpha | metric | records with 2+ reviews |",
            "|---|---:|---|---:|",
        ]
        for q, b in between.items():
            lines.append(
                f"| {LABELS.get(q, q)} | {_num(b['alpha'])} | {b['metric']} | {b['records']} |"
            )
    if versus:
        lines += [
            "",
            "How far the automatic labels can be trusted: each against the human majority.",
            "",
            "| label | exact agreement | alpha | rows |",
            "|---|---:|---:|---:|",
        ]
        for q, v in versus.items():
            cells = [LABELS.get(q, q), _num(v["agreement"]), _num(v["alpha"]), str(v["rows"])]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@hookimpl
def register_card_sections(register: Callable[[CardSection], None]) -> None:
    register(CardSection(name="human-review", title="Human review", render=human_review, order=80))
