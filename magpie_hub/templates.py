"""Pre-query templates: the published presets, and derivation from a model's chat template.

The pre-query template is the chat-formatted text up to where a user message
would begin; fed to an aligned model alone, the model writes a user query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from magpie_hub.chat_template import ChatTemplate, TemplateRaised
from magpie_hub.errors import ChatTemplateError, UnknownNameError

CHATML_STOPS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


@dataclass(frozen=True)
class Preset:
    """A pre-query template as the Magpie authors published it (magpie-facts section 1)."""

    name: str
    pre_query: str
    user_to_assistant: str
    """Closes the user turn and opens the assistant turn."""
    stop: tuple[str, ...]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "llama3",
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n",
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            ("<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>"),
        ),
        Preset("qwen2", "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n", CHATML_STOPS),
        Preset(
            "qwen2.5",
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\n",
            "<|im_end|>\n<|im_start|>assistant\n",
            CHATML_STOPS,
        ),
        Preset("chatml", "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n", CHATML_STOPS),
        Preset(
            "phi3",
            "<s> <|user|>\n",
            "<|end|>\n<|assistant|>\n",
            (
                "</s>",
                "<s>",
                "<unk>",
                "<|endoftext|>",
                "<|user|>",
                "<|assistant|>",
                "<|system|>",
                "<|end|>",
            ),
        ),
        Preset(
            "phi3-small",
            "<|endoftext|><|user|>\n",
            "<|end|>\n<|assistant|>\n",
            ("<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"),
        ),
        Preset(
            "gemma",
            "<bos><start_of_turn>user\n",
            "<end_of_turn>\n<start_of_turn>model\n",
            ("<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
        ),
        Preset(
            "gemma2",
            "<bos><start_of_turn>user\n\n",
            "<end_of_turn>\n<start_of_turn>model\n",
            ("<eos>", "<bos>", "<end_of_turn>"),
        ),
        Preset("mistral", "<s> [INST] ", " [/INST]", ("<s>", "</s>", "[INST]", "[/INST]")),
        Preset(
            "vicuna",
            "A chat between a curious user and an artificial intelligence assistant. The "
            "assistant gives helpful, detailed, and polite answers to the user's questions."
            "\n\nUSER: ",
            " ASSISTANT:",
            ("ASSISTANT",),
        ),
        Preset(
            "yi",
            "<|startoftext|><|im_start|>user\n",
            "<|im_end|>\n<|im_start|>assistant\n",
            CHATML_STOPS,
        ),
    )
}
PRESETS["llama2"] = Preset(
    "llama2", PRESETS["mistral"].pre_query, " [/INST]", ("</s>", "<s>", "<unk>")
)

# Special-token-looking markers: <|eot_id|>, <end_of_turn>, </s>, [INST] ...
_MARKER = re.compile(r"<\|[^|<>\s]+\|>|</?[a-z_]+>|\[/?INST\]")
_SENTINEL = "\u2063MAGPIEHUBSENTINEL\u2063"


@dataclass(frozen=True)
class PromptFormat:
    """How prompts are laid out for one model: what the recipes' steps need."""

    pre_query: str
    stop: tuple[str, ...]
    user_to_assistant: str
    source: str
    """`auto` (derived from the chat template) or the preset name."""
    chat_template: ChatTemplate | None = field(default=None, compare=False)

    def response_prompt(self, instruction: str, system_prompt: str | None = None) -> str:
        """The text the model completes to answer `instruction`."""
        if self.chat_template is not None:
            messages = [{"role": "user", "content": instruction}]
            if system_prompt is not None:
                messages.insert(0, {"role": "system", "content": system_prompt})
            return self.chat_template.render(messages, add_generation_prompt=True)
        if system_prompt is not None:
            raise ChatTemplateError(
                f"preset {self.source}",
                "a system prompt needs the model's chat template; presets have none",
                hint='Use `engine.template = "auto"` with a model that has a chat template.',
            )
        return self.pre_query + instruction + self.user_to_assistant

    def instruction_prompt(self, system_prompt: str | None = None) -> str:
        if system_prompt is None:
            return self.pre_query
        if self.chat_template is None:
            raise ChatTemplateError(
                f"preset {self.source}",
                "a system prompt needs the model's chat template; presets have none",
            )
        return derive(self.chat_template, system_prompt=system_prompt).pre_query


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownNameError("template preset", name, [*PRESETS, "auto"])
    return PRESETS[name]


def matching_preset(pre_query: str) -> Preset | None:
    return next((p for p in PRESETS.values() if p.pre_query == pre_query), None)


def derive(
    template: ChatTemplate, *, system_prompt: str | None = None, model: str = "model"
) -> PromptFormat:
    """Derive the pre-query template, turn switch and stop strings by rendering sentinels."""
    messages = [{"role": "user", "content": _SENTINEL}]
    if system_prompt is not None:
        messages.insert(0, {"role": "system", "content": system_prompt})
    try:
        plain = template.render(messages, add_generation_prompt=False)
        opened = template.render(messages, add_generation_prompt=True)
    except TemplateRaised as exc:
        raise ChatTemplateError(
            model, f"the chat template refused a plain user turn: {exc}"
        ) from exc
    if _SENTINEL not in plain or _SENTINEL not in opened:
        raise ChatTemplateError(model, "the chat template does not render user messages")
    pre_query = plain.split(_SENTINEL, 1)[0]
    user_to_assistant = opened.split(_SENTINEL, 1)[1]
    if not user_to_assistant.strip():
        raise ChatTemplateError(model, "the chat template adds no assistant header")
    stops: list[str] = []
    for marker in [*_MARKER.findall(user_to_assistant), template.eos_token]:
        if marker and marker not in stops:
            stops.append(marker)
    known = matching_preset(pre_query)
    if known is not None:
        stops += [s for s in known.stop if s not in stops]
    return PromptFormat(
        pre_query=pre_query,
        stop=tuple(stops),
        user_to_assistant=user_to_assistant,
        source="auto",
        chat_template=template,
    )


def resolve(name: str, template: ChatTemplate | None, *, model: str) -> PromptFormat:
    """The prompt format for `engine.template` (`auto` or a preset) and the model's template."""
    if name != "auto":
        p = preset(name)
        return PromptFormat(p.pre_query, p.stop, p.user_to_assistant, p.name, template)
    if template is None:
        raise ChatTemplateError(
            model,
            "has no chat template, so the pre-query template cannot be derived",
            hint="Name a preset: `--set engine.template=chatml` (presets: "
            + ", ".join(PRESETS)
            + "), or give `engine.chat_template`.",
        )
    return derive(template, model=model)
