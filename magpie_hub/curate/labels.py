"""Magpie's label vocabularies (magpie-facts sections 5 and 7); ordered ones in order."""

from __future__ import annotations

DIFFICULTY = ["very easy", "easy", "medium", "hard", "very hard"]
QUALITY = ["very poor", "poor", "average", "good", "excellent"]
QUALITY_RATING = {label: i for i, label in enumerate(QUALITY, 1)}
"""`input_quality` on the 1-5 scale reviewers rate."""
CATEGORIES = [
    "Information seeking",
    "Reasoning",
    "Planning",
    "Editing",
    "Coding & Debugging",
    "Math",
    "Data analysis",
    "Creative writing",
    "Advice seeking",
    "Brainstorming",
    "Role playing",
    "Others",
]
SAFETY = ["safe", "unsafe"]
HAZARDS = [f"S{i}" for i in range(1, 15)]
"""Llama Guard 3's hazard categories S1..S14."""

ORDERED = {"input_quality": QUALITY, "difficulty": DIFFICULTY}
"""Columns whose labels compare by their order (`input_quality >= good`)."""
VOCABULARY = {
    **ORDERED,
    "task_category": CATEGORIES,
    "safety": SAFETY,
    "hazard_category": HAZARDS,
}
"""Every labelled column -> its labels (filter rules are checked against these)."""
