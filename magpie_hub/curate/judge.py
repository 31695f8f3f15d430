"""Judge tags in Magpie's structure: a task statement, the user query in a fenced block,
an output-format section and a JSON skeleton. Keys and labels are Magpie's published
ones; the wording is ours. Answers are forced to the schema where the engine can, and
parsed leniently otherwise: a label outside the vocabulary, or no JSON, is an error
counted by reason, never a crash.

(No `from __future__ import annotations`: distilabel reads `StepInput` at run time.)
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from magpie_hub.curate.kit import ERROR, JudgeTagStep
from magpie_hub.curate.labels import CATEGORIES, DIFFICULTY, HAZARDS, QUALITY


def _fence(query: str) -> str:
    return f"## User Query\n```\n{query}\n```\n"


@dataclass(frozen=True)
class JudgeTask:
    """One judge tag: its prompt, JSON schema and how the answer maps to columns."""

    name: str
    prompt: str
    """Format string with `{query}`: the fenced user query."""
    schema: dict[str, Any]
    columns: dict[str, str]
    """Column -> the JSON key it comes from."""

    def render(self, instruction: str) -> str:
        return self.prompt.format(query=_fence(instruction))

    def parse(self, text: str | None, finish: str | None = None) -> dict[str, Any]:
        """The columns from an answer, or all None with `_error` set."""
        empty: dict[str, Any] = {c: None for c in self.columns}
        if text is None:
            return {**empty, ERROR: "engine_error"}
        data = _first_json_object(text)
        if data is None:
            return {**empty, ERROR: "truncated" if finish == "length" else "no_json"}
        out: dict[str, Any] = {}
        for column, key in self.columns.items():
            value = _in_vocabulary(data.get(key), self.schema["properties"][key])
            if value is _BAD:
                return {**empty, ERROR: "truncated" if finish == "length" else f"bad_{key}"}
            out[column] = value
        return {**out, ERROR: None}


_BAD = object()


def _in_vocabulary(value: Any, prop: dict[str, Any]) -> Any:
    """`value` checked against a schema property (enums matched case-insensitively)."""
    if prop.get("type") == "array":
        if not isinstance(value, list):
            return _BAD
        items = [_in_vocabulary(v, prop["items"]) for v in value]
        return [v for v in dict.fromkeys(items) if v is not _BAD]  # drop unknown extras
    if not isinstance(value, str) or not value.strip():
        return _BAD
    if "enum" in prop:
        found = {e.lower(): e for e in prop["enum"]}.get(value.strip().lower())
        return _BAD if found is None else found
    return value.strip()


def _first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` (a missing closing brace is added once)."""
    start = text.find("{")
    if start < 0:
        return None
    decoder = json.JSONDecoder()
    for candidate in (text[start:], text[start:].rstrip() + "}", text[start:].rstrip() + '"}'):
        try:
            value, _ = decoder.raw_decode(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _string(max_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


DIFFICULTY_TASK = JudgeTask(
    name="difficulty",
    prompt=(
        "# Task\nRead the user query below. Say what the user wants, what someone must "
        "know to answer it well, and how hard it is to answer.\n\n{query}\n"
        "## Output Format\nDescribe the intent, then the knowledge needed, then rate the "
        f"difficulty as one of: {', '.join(DIFFICULTY)}.\nAnswer with this JSON only:\n"
        "```\n{{\n"
        '    "intent": "The user wants to ...",\n'
        '    "knowledge": "To solve this problem, the models need to know ...",\n'
        '    "difficulty": "very easy/easy/medium/hard/very hard"\n}}\n```\n'
    ),
    schema=_object(
        {
            "intent": _string(160),
            "knowledge": _string(160),
            "difficulty": {"type": "string", "enum": DIFFICULTY},
        }
    ),
    columns={"intent": "intent", "knowledge": "knowledge", "difficulty": "difficulty"},
)

QUALITY_TASK = JudgeTask(
    name="quality",
    prompt=(
        "# Task\nRate the quality of the user query below: is it clear, specific and "
        "coherent, and does it give the context needed to answer it?\n\n{query}\n"
        "## Rating Scale\n"
        "- very poor: unclear, vague or incoherent; essential context is missing.\n"
        "- poor: somewhat unclear or missing important details; needs much clarifying.\n"
        "- average: moderately clear and specific; may need some added information.\n"
        "- good: clear, specific and mostly well-formed; enough context to answer.\n"
        "- excellent: very clear, specific and well articulated, with all the context "
        "needed for a full answer.\n\n"
        "## Output Format\nFirst explain your rating briefly, then give it.\n"
        "Answer with this JSON only:\n```\n{{\n"
        '    "explanation": "[why this rating]",\n'
        '    "input_quality": "very poor/poor/average/good/excellent"\n}}\n```\n'
    ),
    schema=_object(
        {"explanation": _string(240), "input_quality": {"type": "string", "enum": QUALITY}}
    ),
    columns={"input_quality": "input_quality", "quality_explanation": "explanation"},
)

CATEGORY_TASK = JudgeTask(
    name="category",
    prompt=(
        "# Task\nClassify the user query below into the task categories it belongs "
        "to.\n\n{query}\n## Categories\n"
        + "\n".join(f"- {c}" for c in CATEGORIES)
        + "\n\n## Output Format\nGive the one main category as `primary_tag` and any other "
        "categories that also apply as `other_tags` (an empty list if none).\n"
        "Answer with this JSON only:\n```\n{{\n"
        '    "primary_tag": "[main category]",\n'
        '    "other_tags": ["[category]", ...]\n}}\n```\n'
    ),
    schema=_object(
        {
            "primary_tag": {"type": "string", "enum": CATEGORIES},
            "other_tags": {
                "type": "array",
                "items": {"type": "string", "enum": CATEGORIES},
                "maxItems": 3,
            },
        }
    ),
    columns={"task_category": "primary_tag", "other_task_category": "other_tags"},
)

JUDGE_TASKS = {t.name: t for t in (DIFFICULTY_TASK, QUALITY_TASK, CATEGORY_TASK)}

SAFETY_PROMPT = (
    "Task: Check whether there is unsafe content in the 'Agent' message of the conversation "
    "below, according to the safety policy with these categories.\n\n"
    "<BEGIN UNSAFE CONTENT CATEGORIES>\n"
    "S1: Violent Crimes.\nS2: Non-Violent Crimes.\nS3: Sex Crimes.\nS4: Child Exploitation.\n"
    "S5: Defamation.\nS6: Specialized Advice.\nS7: Privacy.\nS8: Intellectual Property.\n"
    "S9: Indiscriminate Weapons.\nS10: Hate.\nS11: Self-Harm.\nS12: Sexual Content.\n"
    "S13: Elections.\nS14: Code Interpreter Abuse.\n<END UNSAFE CONTENT CATEGORIES>\n\n"
    "<BEGIN CONVERSATION>\n\nUser: {instruction}\n\nAgent: {response}\n\n<END CONVERSATION>\n\n"
    "Provide your safety assessment for ONLY THE LAST Agent message in the above "
    "conversation:\n- First line must read 'safe' or 'unsafe'.\n"
    "- If unsafe, a second line must include a comma-separated list of violated categories."
)
_VERDICT = re.compile(r"^\W*(safe|unsafe)\b", re.IGNORECASE)


def parse_guard(text: str | None) -> dict[str, Any]:
    """`safe`/`unsafe` and the first hazard category, from a Llama-Guard-style answer."""
    if text is None:
        return {"safety": None, "hazard_category": None, ERROR: "engine_error"}
    match = _VERDICT.match(text.strip())
    if not match:
        return {"safety": None, "hazard_category": None, ERROR: "no_verdict"}
    verdict = match.group(1).lower()
    hazards = [h for h in re.findall(r"\bS\d{1,2}\b", text) if h in HAZARDS]
    hazard = hazards[0] if verdict == "unsafe" and hazards else None
    return {"safety": verdict, "hazard_category": hazard, ERROR: None}


class JudgeTags(JudgeTagStep):
    """Quality, difficulty or category of each row's instruction, asked of the judge."""

    task: str

    def tag(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        task = JUDGE_TASKS[self.task]
        answers = self.ask(rows, [task.render(r["instruction"]) for r in rows], task.schema)
        return [task.parse(text, finish) for text, finish in answers]


class GuardTags(JudgeTagStep):
    """A Llama-Guard-style safety verdict over (instruction, response)."""

    def tag(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        prompts = [
            SAFETY_PROMPT.format(instruction=r["instruction"], response=r["response"] or "")
            for r in rows
        ]
        return [parse_guard(text) for text, _ in self.ask(rows, prompts, None)]
