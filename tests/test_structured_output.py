"""How each engine is asked for schema-forced JSON (the judge's answers)."""

from __future__ import annotations

import json

import pytest
from magpie_hub_plugins.engine_openai import _structured

from magpie_hub.curate.judge import QUALITY_TASK

SCHEMA = json.dumps(QUALITY_TASK.schema)


def test_response_format_is_the_default_dialect() -> None:
    body = _structured(SCHEMA, "response_format")
    spec = body["response_format"]
    assert spec["type"] == "json_schema"
    assert spec["json_schema"]["schema"] == QUALITY_TASK.schema


@pytest.mark.parametrize("mode", ["json_schema", "grammar"])
def test_llama_cpp_server_dialects(mode: str) -> None:
    body = _structured(SCHEMA, mode)
    if mode == "json_schema":
        assert body == {"json_schema": QUALITY_TASK.schema}
    else:
        grammar = body["grammar"]
        for label in ("very poor", "poor", "average", "good", "excellent"):
            assert f'\\"{label}\\"' in grammar  # the labels are the grammar's only choices


def test_no_schema_or_mode_none_adds_nothing() -> None:
    assert _structured(None, "response_format") == {}
    assert _structured(SCHEMA, "none") == {}
