"""Pre-query templates: derivation from chat templates, presets, missing templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from magpie_hub.engines.models import inspect_hf_folder
from magpie_hub.errors import ChatTemplateError
from magpie_hub.prompts.chat_template import ChatTemplate
from magpie_hub.prompts.templates import PRESETS, derive, resolve

SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)


def test_faithful_pre_query_keeps_the_default_system_block() -> None:
    fmt = derive(ChatTemplate(SMOLLM2, eos_token="<|im_end|>"))
    assert fmt.pre_query == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\n"
    )
    assert fmt.user_to_assistant == "<|im_end|>\n<|im_start|>assistant\n"
    assert "<|im_end|>" in fmt.stop


def test_llama3_derivation_equals_the_preset_and_has_its_stops() -> None:
    fmt = derive(ChatTemplate(LLAMA3, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"))
    assert fmt.pre_query == PRESETS["llama3"].pre_query
    assert set(PRESETS["llama3"].stop) <= set(fmt.stop)


def test_system_prompt_is_rendered_by_the_template() -> None:
    fmt = derive(ChatTemplate(SMOLLM2), system_prompt="Ask about math.")
    assert fmt.pre_query == "<|im_start|>system\nAsk about math.<|im_end|>\n<|im_start|>user\n"


def test_response_prompt_is_the_templates_own_rendering() -> None:
    fmt = derive(ChatTemplate(SMOLLM2))
    history = [{"role": "user", "content": "Hi?"}]
    assert fmt.response_prompt(history) == fmt.pre_query + "Hi?" + fmt.user_to_assistant


def test_matches_transformers_apply_chat_template(tiny_model: Path) -> None:
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    info = inspect_hf_folder(tiny_model, None)
    assert info.chat_template is not None
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": "A."},
        {"role": "user", "content": "Q2?"},
    ]
    for add in (False, True):
        ours = info.chat_template.render(messages, add_generation_prompt=add)
        theirs = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add)
        assert ours == theirs


def test_no_template_names_the_presets() -> None:
    with pytest.raises(ChatTemplateError) as info:
        resolve("auto", None, model="some.gguf")
    assert "chatml" in (info.value.hint or "") and "engine.template" in (info.value.hint or "")


def test_template_that_raises_is_reported() -> None:
    strict = (
        "{% if messages[0]['role'] != 'system' %}{{ raise_exception('need system') }}{% endif %}"
    )
    with pytest.raises(ChatTemplateError, match="need system"):
        derive(ChatTemplate(strict))


def test_named_preset_and_unknown_preset() -> None:
    fmt = resolve("gemma2", None, model="m")
    assert fmt.pre_query == "<bos><start_of_turn>user\n\n"
    assert (
        fmt.response_prompt([{"role": "user", "content": "Hi"}])
        == "<bos><start_of_turn>user\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    )
    with pytest.raises(Exception, match="unknown template preset 'nope'"):
        resolve("nope", None, model="m")


def test_every_family_has_a_preset() -> None:
    families = {
        "llama3",
        "qwen2",
        "qwen2.5",
        "chatml",
        "phi3",
        "phi3-small",
        "gemma",
        "gemma2",
        "mistral",
        "llama2",
        "vicuna",
        "yi",
    }
    assert families <= set(PRESETS)


# SmolLM2's template with the assistant turns marked the way training templates mark them.
SMOLLM2_GENERATION = SMOLLM2.replace(
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}",
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}{% else %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endif %}",
)


def test_the_generation_tag_renders_as_transformers_does(tiny_model: Path) -> None:
    """Real chat templates mark assistant text with `{% generation %}` for training masks;
    our renderer rejected them, though `apply_chat_template` accepts them."""
    import transformers

    assert "{% generation %}" in SMOLLM2_GENERATION
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    messages = [
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": "A."},
        {"role": "user", "content": "Q2?"},
    ]
    ours = ChatTemplate(SMOLLM2_GENERATION).render(messages, add_generation_prompt=True)
    theirs = tok.apply_chat_template(
        messages, chat_template=SMOLLM2_GENERATION, tokenize=False, add_generation_prompt=True
    )
    assert ours == theirs == ChatTemplate(SMOLLM2).render(messages, add_generation_prompt=True)
    assert (
        derive(ChatTemplate(SMOLLM2_GENERATION)).pre_query
        == derive(ChatTemplate(SMOLLM2)).pre_query
    )
