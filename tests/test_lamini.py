"""Recipe `lamini`: LaMini-LM prompts, the list parser, build-wide dedup, end to end."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_config

from magpie_hub.engines.base import Completion, RawTextLLM, Sampling
from magpie_hub.errors import ImportSourceError
from magpie_hub.prompts import lamini
from magpie_hub.prompts.chat_template import ChatTemplate
from magpie_hub.prompts.templates import resolve
from magpie_hub.steps import prompt_fields

SEEDS = ["Name a prime number.", "Why is the sea salty?", "Write a haiku about rain."]

EXAMPLE_GUIDED = """<example>Name a prime number.</example>
<example>Why is the sea salty?</example>
<example>Write a haiku about rain.</example>

Generate 20 diverse examples that are similar to the provided examples.
You do not need to provide a response to the generated examples.
Each example must include an instruction.
Each generated instruction can be either an imperative sentence or a question.
Each example must start with the label "<example>" and end with the label "</example>"."""


def test_example_guided_prompt() -> None:
    assert lamini.render(SEEDS, 20) == EXAMPLE_GUIDED


def test_topic_guided_prompt() -> None:
    prompt = lamini.render(SEEDS, 5, ["Volcanoes", "Jazz", "Bridges"])
    assert prompt == EXAMPLE_GUIDED.replace(
        "Generate 20 diverse examples that are similar to the provided examples.",
        "Generate 5 diverse examples that are similar to the provided examples with the "
        'topics "Volcanoes, Jazz, Bridges".',
    )


def test_draws_are_seeded_and_follow_the_mix() -> None:
    seeds = [f"seed {i}" for i in range(10)]
    topics = [f"topic {i}" for i in range(10)]
    assert lamini.draw(seeds, topics, 0.5, 7) == lamini.draw(seeds, topics, 0.5, 7)
    never = lamini.draw(seeds, topics, 0.0, 7)
    assert never.source == "example_guided" and never.topics == [] and len(never.seeds) == 3
    always = lamini.draw(seeds, topics, 1.0, 7)
    assert always.source == "topic_guided" and len(always.topics) == 3
    assert len(set(always.seeds)) == 3
    mix = [lamini.draw(seeds, topics, 0.3, s).source for s in range(400)]
    assert 0.2 < mix.count("topic_guided") / 400 < 0.4
    few = lamini.draw(["only one"], [], 1.0, 1)  # no topics: example-guided, all seeds shown
    assert few == lamini.Draw("example_guided", ["only one"], [])


PARSE_CASES = [
    pytest.param(
        "<example>Describe a river delta.</example>\n<example>How do tides work?</example>",
        ["Describe a river delta.", "How do tides work?"],
        {},
        {},
        id="tagged",
    ),
    pytest.param(
        "<example>Describe a river delta.\n<example>How do tides work?",
        ["Describe a river delta.", "How do tides work?"],
        {},
        {"missing_close_tag": 2},
        id="missing-closing-tags",
    ),
    pytest.param(
        "Here are some examples:\n1. Describe a river delta.\n2) How do tides work?\n"
        "- List three metals.",
        ["Describe a river delta.", "How do tides work?", "List three metals."],
        {"preamble": 1},
        {"untagged": 3, "numbering": 3},
        id="numbered-lines-with-a-preamble",
    ),
    pytest.param(
        "<example></example><example>  </example><example>Explain rust.</example>"
        "<example>explain   RUST.</example>",
        ["Explain rust."],
        {"blank": 2, "duplicate": 1},
        {},
        id="blank-and-case-insensitive-duplicates",
    ),
    pytest.param(
        "Sure! <example>1. Explain rust.</example> and also <example>Why is the sea salty?"
        "</example><example>Hi</example>",
        ["Explain rust."],
        {"noise": 2, "seed_copy": 1, "too_short": 1},
        {"numbering": 1},
        id="noise-seed-copies-and-short-items",
    ),
    pytest.param(None, [], {}, {}, id="nothing"),
]


@pytest.mark.parametrize(("text", "items", "dropped", "cleaned"), PARSE_CASES)
def test_parse_list(
    text: str | None, items: list[str], dropped: dict[str, int], cleaned: dict[str, int]
) -> None:
    parsed = lamini.parse_list(text, seeds=SEEDS)
    assert parsed.items == items
    assert dict(parsed.dropped) == dropped
    assert dict(parsed.cleaned) == cleaned


def test_a_truncated_list_loses_its_cut_off_item() -> None:
    text = "<example>Describe a river delta.</example>\n<example>How do tides"
    parsed = lamini.parse_list(text, truncated=True)
    assert parsed.items == ["Describe a river delta."]
    assert dict(parsed.dropped) == {"truncated": 1}
    lines = lamini.parse_list("Describe a river delta.\nHow do ti", truncated=True)
    assert lines.items == ["Describe a river delta."] and lines.dropped["truncated"] == 1


# --- the task ----------------------------------------------------------------------------

CHATML = ChatTemplate(
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class Canned(RawTextLLM):
    """Answers every prompt with `answer`; records the prompts."""

    answer: str = ""
    prompts: list[str] = []

    def complete(self, prompt: str, *, seed: int, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        return Completion(self.answer, "stop", 1, 1)


def listed_task(answer: str, chunk_dir: Path, per_call: int = 3) -> Any:
    from magpie_hub.generate.seeded_tasks import GenerateListedInstructions

    llm = Canned(model_path=".", model_id="canned", answer=answer, prompts=[])
    task = GenerateListedInstructions(
        llm=llm,
        sampling={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 64},
        seeds=SEEDS,
        topics=["Jazz"],
        topic_share=0.0,
        per_call=per_call,
        fingerprint="f",
        model_id="canned",
        chunk_dir=str(chunk_dir),
        seed=1,
        **prompt_fields(resolve("auto", CHATML, model="canned")),
    )
    task.load()
    return task


ANSWER = "<example>Describe a river delta.</example><example>describe a RIVER delta.</example>" + (
    "<example>How do tides work?</example>"
)


def test_rows_share_a_call_and_duplicates_across_the_build_drop(tmp_path: Path) -> None:
    task = listed_task(ANSWER, tmp_path)
    out = next(task.process([{"row_index": i} for i in range(6)]))
    got = [(r["instruction"], r["dropped_reason"]) for r in out]
    assert got == [
        ("Describe a river delta.", None),
        ("How do tides work?", None),
        (None, "short_list"),
        (None, "duplicate_instruction"),  # call 1 answers the same: the build has them
        (None, "duplicate_instruction"),
        (None, "short_list"),
    ]
    assert len(task.llm.prompts) == 2  # one call per three rows
    assert task.llm.prompts[0].startswith("<|im_start|>user\n<example>")
    assert task.llm.prompts[0].endswith("<|im_end|>\n<|im_start|>assistant\n")
    first = out[0]
    assert first["source"] == "example_guided" and sorted(first["seed_instructions"]) == sorted(
        SEEDS
    )
    assert first["conversation"] == [{"role": "user", "content": "Describe a river delta."}]
    assert first["list_call"]["items"] == 2
    assert first["list_call"]["dropped"] == [{"reason": "duplicate", "count": 1}]


def test_committed_chunks_count_for_dedup(tmp_path: Path) -> None:
    """A resumed build: an instruction committed earlier is a duplicate now."""
    table = pa.Table.from_pylist([{"instruction": "HOW DO TIDES WORK?"}])
    pq.write_table(table, tmp_path / "chunk-00000000-aaaa.parquet")
    (tmp_path / "chunk-00000000-aaaa.json").write_text(
        '{"written": [9], "dropped": {}, "failed": []}'
    )
    pq.write_table(  # no marker: not committed, does not count
        pa.Table.from_pylist([{"instruction": "Describe a river delta."}]),
        tmp_path / "chunk-00000010-bbbb.parquet",
    )
    out = next(listed_task(ANSWER, tmp_path).process([{"row_index": 0}, {"row_index": 1}]))
    assert [r["dropped_reason"] for r in out] == [None, "duplicate_instruction"]


# --- through the CLI ---------------------------------------------------------------------


def echo_config(tmp_path: Path, extra: str = "", **fields: Any) -> Path:
    top = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    return write_config(
        tmp_path / "lamini.toml",
        f"""recipe = "lamini"
num_rows = 6
batch_size = 2
instructions_per_call = 1
views = ["sharegpt", "alpaca"]
{top}
[engine]
name = "echo"
model = "m"
{extra}""",
    )


@pytest.mark.slow
def test_generate_with_the_echo_engine(cli, with_plugins: Path, tmp_path: Path) -> None:
    config = echo_config(tmp_path, topic_share=1.0)
    build = tmp_path / "build"
    result = cli("generate", str(config), "--out", str(build), "--json")
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((build / "manifest.json").read_text())
    rows = pq.read_table(build / "data" / "train-00000-of-00001.parquet").to_pylist()
    assert len(rows) == 6  # the echo questions name their seed: all different
    for row in rows:
        assert row["source"] == "topic_guided" and len(row["topics"]) == 3
        assert len(row["seed_instructions"]) == 3
        assert row["instruction"].startswith("Echo question number")
        assert row["conversation"][0] == {"role": "user", "content": row["instruction"]}
        assert row["response"]
    inputs = json.loads(rows[0]["inputs"])
    assert inputs["seeds"]["kind"] == "builtin" and inputs["topics"]["kind"] == "builtin"
    assert manifest["views"]["sharegpt"]["rows"] == 6 and manifest["views"]["alpaca"]["rows"] == 6


def test_seeds_and_topics_from_a_hub_dataset(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from huggingface_hub import CommitOperationAdd, HfApi
    from magpie_hub_plugins.recipe_lamini import LaminiConfig, read_seeds, read_topics

    repo = f"alice/seeds-{os.urandom(4).hex()}"
    HfApi().create_repo(repo, repo_type="dataset")
    sink = io.BytesIO()
    rows = [{"prompt": "Seed from the Hub one."}, {"prompt": ""}, {"prompt": "Seed two."}]
    pq.write_table(pa.Table.from_pylist(rows), sink)
    ops = [CommitOperationAdd(path_in_repo="data/train.parquet", path_or_fileobj=sink.getvalue())]
    HfApi().create_commit(repo, ops, commit_message="seeds", repo_type="dataset")
    topics = write_config(tmp_path / "topics.txt", "Jazz\n\nVolcanoes\n")
    cfg = LaminiConfig.model_validate(
        {"seeds": {"source": repo}, "topics": {"source": str(topics)}}
    )
    seeds = read_seeds(cfg)
    assert seeds.texts == ["Seed from the Hub one.", "Seed two."]
    assert seeds.record["kind"] == "hub" and seeds.record["column"] == "prompt"
    assert len(seeds.record["commit"]) == 40 and seeds.record["empty"] == 1
    found = read_topics(cfg)
    assert found is not None and found.texts == ["Jazz", "Volcanoes"]


def test_bad_seed_sources_are_one_clear_error(tmp_path: Path) -> None:
    from magpie_hub_plugins.recipe_lamini import LaminiConfig, read_seeds

    def error(source: str, **more: Any) -> ImportSourceError:
        cfg = LaminiConfig.model_validate({"seeds": {"source": source, **more}})
        with pytest.raises(ImportSourceError) as exc:
            read_seeds(cfg)
        assert exc.value.hint
        return exc.value

    assert "holds no seed instructions" in str(error(str(write_config(tmp_path / "e.txt", "\n\n"))))
    assert "no such file" in str(error(str(tmp_path / "missing.jsonl")))
    table = write_config(tmp_path / "t.jsonl", '{"answer": "x"}\n')
    assert "has no column any of instruction" in str(error(str(table)))
    assert "has no column 'query'" in str(error(str(table), column="query"))


@pytest.mark.slow
@pytest.mark.embedded
def test_starter_config_end_to_end_on_the_embedded_model(
    cli, embedded_model: Path, tmp_path: Path
) -> None:
    from datasets import load_dataset

    config = tmp_path / "magpie-hub.toml"
    assert cli("init", str(config), "--recipe", "lamini").exit_code == 0
    build, tree = tmp_path / "build", tmp_path / "tree"
    sets = ["--set", "instruction.max_new_tokens=160", "--set", "response.max_new_tokens=48"]
    result = cli("generate", str(config), "--out", str(build), "-n", "6", "--json", *sets)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["generated"] + summary["dropped"] == 6
    assert summary["generated"] >= 1, summary
    args = ("publish", str(config), "--repo", "alice/lamini", "--tag", "v1", "--out", str(build))
    published = cli(*args, "--local", str(tree), *sets)
    assert published.exit_code == 0, published.stderr
    card = (tree / "README.md").read_text()
    assert "## LaMini instructions" in card and "Seeds: magpie-hub's built-in set" in card
    default = load_dataset(str(tree), "default", split="train").to_list()
    assert {r["source"] for r in default} <= {"example_guided", "topic_guided"}
    keys = [" ".join(r["instruction"].casefold().split()) for r in default]
    assert len(keys) == len(set(keys))  # no duplicate across the build
    for view, column in (("sharegpt", "conversations"), ("alpaca", "output")):
        rows = load_dataset(str(tree), view, split="train").to_list()
        assert len(rows) == len(default) and all(r[column] for r in rows)
