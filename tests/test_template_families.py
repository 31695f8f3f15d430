"""Derivation against the chat templates that model families ship (tests/data/chat_templates).

Expected values come from transformers' own `apply_chat_template`, cut at a sentinel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from magpie_hub.prompts.chat_template import ChatTemplate
from magpie_hub.prompts.templates import PRESETS, derive

DATA = Path(__file__).parent / "data" / "chat_templates"
SENTINEL = "<<user message here>>"
# family -> (bos, eos, end-of-turn marker that must be a stop string, takes a system message)
FAMILIES = {
    "smollm2": ("<|im_start|>", "<|im_end|>", "<|im_end|>", True),
    "qwen2": ("", "<|im_end|>", "<|im_end|>", True),
    "qwen2.5": ("", "<|im_end|>", "<|im_end|>", True),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>", True),
    "llama3.1": ("<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>", True),
    "gemma2": ("<bos>", "<eos>", "<end_of_turn>", False),
    "phi3": ("<s>", "<|endoftext|>", "<|end|>", True),
    "mistral": ("<s>", "</s>", "[/INST]", False),
    "llama2": ("<s>", "</s>", "[/INST]", True),
    "zephyr": ("<s>", "</s>", "</s>", True),
}


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def reference(tokenizer, source: str, bos: str, eos: str, messages, add: bool) -> str:  # type: ignore[no-untyped-def]
    """transformers' rendering with this family's special tokens."""
    tokenizer.bos_token, tokenizer.eos_token = bos or None, eos
    return tokenizer.apply_chat_template(
        messages, chat_template=source, tokenize=False, add_generation_prompt=add
    )


def template(name: str) -> ChatTemplate:
    bos, eos, *_ = FAMILIES[name]
    return ChatTemplate((DATA / f"{name}.jinja").read_text(), bos, eos)


def test_at_least_eight_families() -> None:
    assert len(FAMILIES) >= 8
    assert {p.stem for p in DATA.glob("*.jinja")} == set(FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_pre_query_equals_the_templates_rendering(tokenizer, name: str) -> None:
    bos, eos, end_of_turn, takes_system = FAMILIES[name]
    source = (DATA / f"{name}.jinja").read_text()
    user = [{"role": "user", "content": SENTINEL}]
    expected = reference(tokenizer, source, bos, eos, user, False).split(SENTINEL)[0]
    fmt = derive(template(name))
    assert fmt.pre_query == expected
    opened = reference(tokenizer, source, bos, eos, user, True)
    assert fmt.user_to_assistant == opened.split(SENTINEL)[1]
    assert end_of_turn in fmt.stop
    if takes_system:
        system = [{"role": "system", "content": "Be terse."}, *user]
        expected = reference(tokenizer, source, bos, eos, system, False).split(SENTINEL)[0]
        assert derive(template(name), system_prompt="Be terse.").pre_query == expected


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("llama3", "llama3"),
        ("llama3.1", "llama3"),
        ("qwen2", "qwen2"),
        ("smollm2", "chatml"),
        ("qwen2.5", "qwen2"),
    ],
)
def test_template_system_none_equals_the_preset(name: str, preset: str) -> None:
    fmt = derive(template(name), template_system="none")
    assert fmt.pre_query == PRESETS[preset].pre_query


def test_faithful_variants_keep_injected_blocks() -> None:
    assert "Cutting Knowledge Date" in derive(template("llama3.1")).pre_query
    assert derive(template("qwen2.5")).pre_query == PRESETS["qwen2.5"].pre_query
    assert "You are a helpful assistant." in derive(template("qwen2")).pre_query


def test_presets_that_differ_on_purpose() -> None:
    # gemma2's preset adds a newline, phi3's a space after <s>: the published variants.
    assert derive(template("gemma2"), template_system="none").pre_query == (
        "<bos><start_of_turn>user\n"
    )
    assert PRESETS["gemma2"].pre_query == "<bos><start_of_turn>user\n\n"
    assert derive(template("phi3"), template_system="none").pre_query == "<|user|>\n"
    assert PRESETS["phi3"].pre_query == "<s> <|user|>\n"
