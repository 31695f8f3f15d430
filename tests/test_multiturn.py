"""Multi-turn Magpie: every prompt is the chat template's own rendering, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import write_config

from magpie_hub.engines.base import Completion, RawTextLLM
from magpie_hub.generate.tasks import GenerateConversation
from magpie_hub.prompts.chat_template import ChatTemplate
from magpie_hub.prompts.templates import derive
from magpie_hub.steps import prompt_fields

DATA = Path(__file__).parent / "data" / "chat_templates"
SENTINEL = "<<next user message>>"
TEMPLATES = {  # family -> (bos, eos, accepts a system message)
    "llama3": ("<|begin_of_text|>", "<|eot_id|>", True),
    "smollm2": ("<|im_start|>", "<|im_end|>", True),
    "gemma2": ("<bos>", "<eos>", False),
}


class RecordingLLM(RawTextLLM):
    """Writes numbered questions and answers and remembers every prompt it was given."""

    prompts: list[str] = []

    def complete(self, prompt: str, *, seed: int, sampling: Any) -> Completion:
        self.prompts.append(prompt)
        n = len(self.prompts)
        text = f"Question {n}?" if sampling.max_new_tokens == 11 else f"Answer {n}."
        return Completion(text, "stop", 1, 1)


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def run_conversation(name: str, *, system: str | None, end_with_user: bool = False):  # type: ignore[no-untyped-def]
    bos, eos, _ = TEMPLATES[name]
    fmt = derive(ChatTemplate((DATA / f"{name}.jinja").read_text(), bos, eos))
    llm = RecordingLLM(model_path=".", model_id="rec", prompts=[])
    step = GenerateConversation(
        name="conversation",
        llm=llm,
        turns=3,
        end_with_user=end_with_user,
        instruction_system_prompt=system,
        response_system_prompt=system,
        instruction_sampling={"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 11},
        response_sampling={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 22},
        fingerprint="f",
        model_id="rec",
        seed=1,
        **prompt_fields(fmt),
    )
    step.load()
    (row,) = next(step.process([{"row_index": 0}]))
    return row, llm.prompts


def render(tokenizer, name: str, messages, add: bool) -> str:  # type: ignore[no-untyped-def]
    bos, eos, _ = TEMPLATES[name]
    tokenizer.bos_token, tokenizer.eos_token = bos, eos
    return tokenizer.apply_chat_template(
        messages,
        chat_template=(DATA / f"{name}.jinja").read_text(),
        tokenize=False,
        add_generation_prompt=add,
    )


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("system", [None, "You ask about astronomy."])
def test_every_prompt_is_the_templates_rendering(tokenizer, name: str, system) -> None:  # type: ignore[no-untyped-def]
    if system and not TEMPLATES[name][2]:
        with pytest.raises(Exception, match="System role not supported"):
            run_conversation(name, system=system)
        return
    row, prompts = run_conversation(name, system=system)
    convo = row["conversation"]
    assert [m["role"] for m in convo] == ["user", "assistant"] * 3
    assert row["num_turns"] == 3 and row["instruction"] == convo[0]["content"]
    head = [{"role": "system", "content": system}] if system else []
    for i, prompt in enumerate(prompts):
        history = convo[:i]
        if i % 2 == 0:  # an instruction turn: history cut where the next user message starts
            rendered = render(
                tokenizer, name, [*head, *history, {"role": "user", "content": SENTINEL}], False
            )
            expected = rendered.split(SENTINEL)[0]
        else:  # a response turn: history ending with the user message, generation prompt on
            expected = render(tokenizer, name, [*head, *history], True)
        assert prompt == expected, f"prompt {i} differs"


def test_no_empty_assistant_header_before_the_next_user_turn() -> None:
    _, prompts = run_conversation("llama3", system="Be brief.")
    for prompt in prompts[2::2]:  # instruction prompts after the first turn
        assert "<|start_header_id|>assistant<|end_header_id|>\n\n<|begin_of_text|>" not in prompt
        assert prompt.endswith("<|start_header_id|>user<|end_header_id|>\n\n")


def test_end_with_user() -> None:
    row, prompts = run_conversation("smollm2", system=None, end_with_user=True)
    assert [m["role"] for m in row["conversation"]] == ["user", "assistant"] * 2 + ["user"]
    assert len(prompts) == 5


def test_turn_limits_and_warning(tmp_path: Path) -> None:
    from magpie_hub.config import load_config
    from magpie_hub.errors import ConfigValidationError
    from magpie_hub.plugins import get_registry

    path = write_config(tmp_path / "c.toml", 'recipe = "magpie-mt"\nturns = 9\n')
    with pytest.raises(ConfigValidationError, match="turns"):
        load_config(path, get_registry())
    path.write_text('recipe = "magpie-mt"\nturns = 5\n')
    with pytest.warns(UserWarning, match="beyond about 4 turns"):
        load_config(path, get_registry())


@pytest.mark.slow
def test_tiny_model_writes_conversations(cli, tiny_model: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        f"""
recipe = "magpie-mt"
num_rows = 4
turns = 2
batch_size = 2
include_system_prompt = true
response_system_prompt = "Answer briefly."
[engine]
name = "transformers"
model = "{tiny_model}"
[instruction]
max_new_tokens = 24
[response]
max_new_tokens = 24
""",
    )
    result = cli("generate", str(config), "--out", str(tmp_path / "b"), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["generated"] + summary["dropped"] == 4
    rows = pq.read_table(tmp_path / "b/data/train-00000-of-00001.parquet").to_pylist()
    for row in rows:
        roles = [m["role"] for m in row["conversation"]]
        assert roles == ["system", "user", "assistant", "user", "assistant"]
        assert row["num_turns"] == 2 and row["system_prompt"] == "Answer briefly."


@pytest.mark.slow
@pytest.mark.embedded
def test_embedded_model_writes_three_turns(cli, embedded_model: Path, tmp_path: Path) -> None:
    config = tmp_path / "mt.toml"
    assert cli("init", str(config), "--recipe", "magpie-mt").exit_code == 0
    result = cli(
        "generate",
        str(config),
        "--out",
        str(tmp_path / "b"),
        "--json",
        "-n",
        "2",
        "--set",
        "batch_size=2",
        "--set",
        "response.max_new_tokens=64",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["generated"] >= 1, summary
    rows = pq.read_table(tmp_path / "b/data/train-00000-of-00001.parquet").to_pylist()
    for row in rows:
        assert [m["role"] for m in row["conversation"]] == ["user", "assistant"] * 3
        for message in row["conversation"]:
            assert message["content"].strip() and "<|im_" not in message["content"]


def test_stop_at_newline_adds_a_newline_stop() -> None:
    fmt = derive(ChatTemplate((DATA / "smollm2.jinja").read_text(), "<|im_start|>", "<|im_end|>"))
    seen: list[list[str]] = []

    class StopRecorder(RecordingLLM):
        def generate(self, inputs, num_generations=1, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(list(kwargs["stop"]))
            return super().generate(inputs, num_generations, **kwargs)

    step = GenerateConversation(
        name="c",
        llm=StopRecorder(model_path=".", model_id="r", prompts=[]),
        turns=2,
        instruction_sampling={
            "temperature": 1.0,
            "top_p": 1.0,
            "max_new_tokens": 11,
            "stop_at_newline": True,
        },
        response_sampling={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 22},
        fingerprint="f",
        model_id="r",
        seed=1,
        **prompt_fields(fmt),
    )
    step.load()
    next(step.process([{"row_index": 0}]))
    assert ["\n" in stops for stops in seen] == [True, False, True, False]
