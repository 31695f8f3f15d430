"""Pre-query templates: the published presets, and derivation from a model's chat template.

The pre-query template is the chat-formatted text up to where a user message
would begin; fed to an aligned model alone, the model writes a user query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from magpie_hub.errors import ChatTemplateError, UnknownNameError
from magpie_hub.prompts.chat_template import ChatTemplate, TemplateRaised

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


@dataclass(frozen=True)
class PromptFormat:
    """How prompts are laid out for one model: what the recipes' steps need."""

    pre_query: str
    stop: tuple[str, ...]
    user_to_assistant: str
    source: str
    """`auto` (derived from the chat template) or the preset name."""
    chat_template: ChatTemplate | None = field(default=None, compare=False)
    assistant_to_user: str | None = None

    def next_user_prompt(
        self, history: list[dict[str, str]], system_prompt: str | None = None
    ) -> str:
        """The conversation so far, rendered and cut where the next user message would start."""
        if self.chat_template is None:
            if history or system_prompt is not None:
                raise ChatTemplateError(
                    f"preset {self.source}",
                    "system prompts and multi-turn need the model's chat template; "
                    "presets have none",
                    hint='Use `engine.template = "auto"` with a model that has a chat template.',
                )
            return self.pre_query
        messages = _with_system(system_prompt, [*history, _user(_S1)])
        return _cut(self.chat_template, messages, _S1, self.source)[0]

    def response_prompt(
        self, history: list[dict[str, str]], system_prompt: str | None = None
    ) -> str:
        """The text the model completes to answer the last user message of `history`."""
        if self.chat_template is None:
            if len(history) != 1 or system_prompt is not None:
                self.next_user_prompt(history, system_prompt)  # raises the error above
            return self.pre_query + history[0]["content"] + self.user_to_assistant
        return _render(self.chat_template, _with_system(system_prompt, history), True, self.source)


def _with_system(system_prompt: str | None, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return messages if system_prompt is None else [_system(system_prompt), *messages]


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownNameError("template preset", name, [*PRESETS, "auto"])
    return PRESETS[name]


def matching_preset(pre_query: str) -> Preset | None:
    return next((p for p in PRESETS.values() if p.pre_query == pre_query), None)


def derive(
    template: ChatTemplate,
    *,
    system_prompt: str | None = None,
    template_system: str = "default",
    model: str = "model",
) -> PromptFormat:
    """Derive the pre-query template, turn switches and stop strings by rendering sentinels.

    `template_system="default"` keeps what the template renders before the first user turn
    (a default system block included); `"none"` leaves out a block the template injects.
    """
    turns = _turn_pieces(template, model)
    if system_prompt is not None:
        pre_query = _cut(template, [_system(system_prompt), _user(_S1)], _S1, model)[0]
    elif template_system == "none":
        emits_bos = bool(template.bos_token) and "bos_token" in template.source
        lead = (
            template.bos_token if emits_bos and turns.first.startswith(template.bos_token) else ""
        )
        pre_query = lead + turns.user_open if turns.user_open else turns.first
    else:
        pre_query = turns.first
    stops: list[str] = []
    for marker in [*_MARKER.findall(turns.user_to_assistant), template.eos_token]:
        if marker and marker not in stops:
            stops.append(marker)
    known = matching_preset(pre_query)
    if known is not None:
        stops += [s for s in known.stop if s not in stops]
    return PromptFormat(
        pre_query=pre_query,
        stop=tuple(stops),
        user_to_assistant=turns.user_to_assistant,
        source="auto",
        chat_template=template,
        assistant_to_user=turns.assistant_to_user,
    )


_S1, _S2, _A = (f"\u2063MAGPIEHUB{n}\u2063" for n in ("USER1", "USER2", "ASSISTANT"))


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _system(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


@dataclass(frozen=True)
class _Turns:
    first: str
    """Everything before the first user message (default system block included)."""
    user_to_assistant: str
    assistant_to_user: str | None
    """Closes an assistant turn and opens the next user turn (None: not renderable)."""
    user_open: str | None
    """Opens a user turn, without the close of the turn before it."""


def _turn_pieces(template: ChatTemplate, model: str) -> _Turns:
    first, _ = _cut(template, [_user(_S1)], _S1, model)
    opened = _render(template, [_user(_S1)], True, model)
    if _S1 not in opened or not opened.split(_S1, 1)[1].strip():
        raise ChatTemplateError(model, "the chat template adds no assistant header")
    user_to_assistant = opened.split(_S1, 1)[1]
    try:
        convo = [_user(_S1), {"role": "assistant", "content": _A}, _user(_S2)]
        between = _cut(template, convo, _S2, model)[0].split(_A, 1)[1]
        closed = _render(template, convo[:2], False, model).split(_A, 1)[1]
    except (ChatTemplateError, IndexError):
        return _Turns(first, user_to_assistant, None, None)
    user_open = between[len(closed) :] if between.startswith(closed) else None
    return _Turns(first, user_to_assistant, between, user_open)


def _render(
    template: ChatTemplate, messages: list[dict[str, str]], add_generation_prompt: bool, model: str
) -> str:
    import jinja2

    try:
        return template.render(messages, add_generation_prompt=add_generation_prompt)
    except TemplateRaised as exc:
        raise ChatTemplateError(
            model,
            f"the chat template refused {[m['role'] for m in messages]}: {exc}",
            hint='Name a preset instead, e.g. `engine.template = "chatml"` '
            f"(presets: {', '.join(PRESETS)}).",
        ) from exc
    except jinja2.TemplateError as exc:  # a syntax error, an undefined name, ...
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ChatTemplateError(
            model,
            f"the chat template cannot be rendered: {type(exc).__name__}{where}: {exc}",
            hint="Fix the template, or name a preset instead, e.g. "
            f'`engine.template = "chatml"` (presets: {", ".join(PRESETS)}).',
        ) from exc


def _cut(
    template: ChatTemplate, messages: list[dict[str, str]], sentinel: str, model: str
) -> tuple[str, str]:
    """Render without a generation prompt and split at the sentinel."""
    text = _render(template, messages, False, model)
    if sentinel not in text:
        raise ChatTemplateError(model, "the chat template does not render user messages")
    before, after = text.split(sentinel, 1)
    return before, after


def resolve(
    name: str, template: ChatTemplate | None, *, model: str, template_system: str = "default"
) -> PromptFormat:
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
    return derive(template, template_system=template_system, model=model)


def describe(source: str, *, template_system: str = "default") -> dict[str, object]:
    """What `magpie-hub templates show` prints: a preset, or what a chat template derives to."""
    if source in PRESETS:
        p = PRESETS[source]
        return {
            "source": source,
            "pre_query_template": p.pre_query,
            "user_to_assistant": p.user_to_assistant,
            "assistant_to_user": None,
            "stop": list(p.stop),
            "preset": p.name,
        }
    from pathlib import Path

    from magpie_hub.engines.models import load_chat_template

    template = load_chat_template(Path(source))
    fmt = resolve("auto", template, model=source, template_system=template_system)
    match = matching_preset(fmt.pre_query)
    other = "none" if template_system == "default" else "default"
    variant = derive(template, template_system=other, model=source) if template else fmt
    alt = matching_preset(variant.pre_query)
    result: dict[str, object] = {
        "source": source,
        "template_system": template_system,
        "pre_query_template": fmt.pre_query,
        "user_to_assistant": fmt.user_to_assistant,
        "assistant_to_user": fmt.assistant_to_user,
        "stop": list(fmt.stop),
        "preset": match.name if match else None,
    }
    if match is None:
        result["note"] = (
            f"the template_system={other!r} variant equals preset {alt.name!r}"
            if alt
            else _closest_preset_note(fmt.pre_query)
        )
    return result


def _closest_preset_note(pre_query: str) -> str:
    squeeze = "".join(pre_query.split())
    for p in PRESETS.values():
        if "".join(p.pre_query.split()) == squeeze:
            return f"differs from preset {p.name!r} only by whitespace: {p.pre_query!r}"
    return "matches no preset"
