"""Recipe `instruct-synth`: the synthesizer's prompt and parser, splitting, chaining, views."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magpie_hub.engines.base import Completion, RawTextLLM, Sampling
from magpie_hub.errors import ConfigError, ConfigValidationError, ImportSourceError
from magpie_hub.prompts import synth

QA = [{"question": "What is it?", "answer": "A text."}]


def test_prompt_for_one_text() -> None:
    prompt = synth.render("Bees keep the nest warm.")
    assert prompt.text == "<s> <CON> Bees keep the nest warm. </CON>\n\n"
    assert prompt.shots == 0


def test_chained_prompt_keeps_the_latest_examples_that_fit() -> None:
    earlier = [("First text.", QA), ("Unanswered.", []), ("Second text.", QA)]
    chained = synth.render("Third.", earlier)
    assert chained.text == (
        "<s> <CON> First text. </CON>\n\n<QUE> What is it? <ANS> A text. </END> </s>"
        "<s> <CON> Second text. </CON>\n\n<QUE> What is it? <ANS> A text. </END> </s>"
        "<s> <CON> Third. </CON>\n\n"
    )
    assert chained.shots == 2  # a text without pairs is not an example
    tight = synth.render("Third.", earlier, budget_words=chained.words - 1)
    assert tight.shots == 1 and tight.text.startswith("<s> <CON> Second text.")
    assert synth.render("Third.", earlier, budget_words=1).text == "<s> <CON> Third. </CON>\n\n"


PARSE_CASES = [
    pytest.param(
        "<QUE> What warms the nest? <ANS> Shivering bees. </END>\n\n"
        "<QUE> What cools it? <ANS> Fanning\n\nand water. </END>",
        [("What warms the nest?", "Shivering bees."), ("What cools it?", "Fanning\n\nand water.")],
        {},
        id="two-pairs",
    ),
    pytest.param(
        "<QUE> What warms the nest? <ANS> Bees. </END>\n\n<QUE> What cools it? <ANS> Fann",
        [("What warms the nest?", "Bees.")],
        {"unfinished": 1},
        id="unfinished-last-pair-dropped",
    ),
    pytest.param(
        "<QUE> What warms it? <ANS> Bees. </END>\n\n<QUE> WHAT  warms it? <ANS> Again. </END>",
        [("What warms it?", "Bees.")],
        {"duplicate_question": 1},
        id="case-insensitive-question-dedup",
    ),
    pytest.param(
        "Sure: <QUE> No answer here </END><QUE> <ANS> Empty question </END>"
        "<QUE> Lost end <ANS> x <QUE> Fine? <ANS> Yes. </END> </s><s> <CON> next text",
        [("Fine?", "Yes.")],
        {"noise": 1, "missing_answer": 1, "empty": 1, "missing_end": 1},
        id="noise-and-broken-pairs",
    ),
    pytest.param("", [], {}, id="empty"),
]


@pytest.mark.parametrize(("output", "pairs", "dropped"), PARSE_CASES)
def test_parse_pairs(output: str, pairs: list[tuple[str, str]], dropped: dict[str, int]) -> None:
    parsed = synth.parse_pairs(output)
    assert [(p["question"], p["answer"]) for p in parsed.pairs] == pairs
    assert dict(parsed.dropped) == dropped


def test_split_text_at_paragraphs_sentences_then_words() -> None:
    text = "One two three. Four five six seven.\n\nEight nine ten eleven twelve thirteen."
    assert synth.split_text(text, 100) == [text]
    assert synth.split_text(text, 7) == [
        "One two three. Four five six seven.",
        "Eight nine ten eleven twelve thirteen.",
    ]
    assert synth.split_text(text, 4) == [
        "One two three.",
        "Four five six seven.",
        "Eight nine ten eleven",
        "twelve thirteen.",
    ]
    assert synth.split_text("   ", 4) == []
    assert all(synth.words(p) <= 3 for p in synth.split_text(" ".join(["w"] * 50), 3))


def test_pretrain_text_and_conversation() -> None:
    pairs = [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?", "answer": "A2."}]
    assert synth.pretrain_text("Text.", pairs) == "Text.\n\nQuestion: Q1?\nAnswer: A1.\n\n" + (
        "Question: Q2?\nAnswer: A2."
    )
    assert synth.conversation("Text.", pairs) == [
        {"role": "user", "content": "Text.\n\nQ1?"},
        {"role": "assistant", "content": "A1."},
        {"role": "user", "content": "Q2?"},
        {"role": "assistant", "content": "A2."},
    ]


# --- the task ----------------------------------------------------------------------------


class Synthesizer(RawTextLLM):
    """Writes one pair naming the last text of the prompt; records the prompts."""

    prompts: list[str] = []

    def complete(self, prompt: str, *, seed: int, sampling: Sampling) -> Completion:
        self.prompts.append(prompt)
        text = prompt.rsplit("<CON>", 1)[1].split("</CON>")[0].strip()
        return Completion(f"<QUE> About {text}? <ANS> Yes. </END>\n\n<QUE> Cut", "stop", 1, 1)


def synth_task(chain: int, demos: list[dict[str, Any]] | None = None) -> Any:
    from magpie_hub.generate.seeded_tasks import SynthesizePairs

    task = SynthesizePairs(
        llm=Synthesizer(model_path=".", model_id="synth", prompts=[]),
        sampling={"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 64},
        chain=chain,
        budget_words=1000,
        demos=demos or [],
        fingerprint="f",
        model_id="synth",
        seed=1,
        pre_query="",
        user_to_assistant="",
        stop=["</s>"],
    )
    task.load()
    return task


def rows_for(texts: list[str], indices: list[int], chain: int) -> list[dict[str, Any]]:
    return [
        {"row_index": i, "text": texts[i], "earlier": texts[i - i % chain : i]} for i in indices
    ]


def test_chains_prompt_each_text_after_its_chain(tmp_path: Path) -> None:
    texts = ["t0", "t1", "t2", "t3"]
    task = synth_task(chain=2, demos=[{"text": "demo", "pairs": QA}])
    out = next(task.process(rows_for(texts, [0, 1, 2, 3], 2)))
    assert [r["pairs"] for r in out] == [
        [{"question": f"About t{i}?", "answer": "Yes."}] for i in range(4)
    ]
    assert [r["synth"]["shots"] for r in out] == [1, 2, 1, 2]
    assert out[0]["synth"]["dropped"] == [{"reason": "unfinished", "count": 1}]
    prompts = task.llm.prompts
    assert len(prompts) == 4
    t1 = next(p for p in prompts if p.endswith("<CON> t1 </CON>\n\n"))
    assert t1 == (
        "<s> <CON> demo </CON>\n\n<QUE> What is it? <ANS> A text. </END> </s>"
        "<s> <CON> t0 </CON>\n\n<QUE> About t0? <ANS> Yes. </END> </s>"
        "<s> <CON> t1 </CON>\n\n"
    )
    assert out[1]["conversation"][0] == {"role": "user", "content": "t1\n\nAbout t1?"}


def test_a_chain_member_outside_the_batch_is_synthesized_again() -> None:
    texts = ["t0", "t1", "t2"]
    task = synth_task(chain=3)
    out = next(task.process(rows_for(texts, [2], 3)))  # a resumed run: only row 2 left
    assert out[0]["synth"]["shots"] == 2
    assert len(task.llm.prompts) == 3  # t0, t1 (after t0), then t2
    assert task.llm.prompts[-1].count("<CON>") == 3


def test_a_text_without_pairs_and_a_row_past_the_corpus_drop() -> None:
    class Silent(Synthesizer):
        def complete(self, prompt: str, *, seed: int, sampling: Sampling) -> Completion:
            return Completion("I cannot.", "stop", 1, 1)

    task = synth_task(chain=1)
    task.llm = Silent(model_path=".", model_id="synth", prompts=[])
    task.load()
    rows = [
        {"row_index": 0, "text": "t0", "earlier": []},
        {"row_index": 1, "text": "", "earlier": []},
    ]
    out = next(task.process(rows))
    assert [r["dropped_reason"] for r in out] == ["no_pairs", "no_text"]
    assert out[0]["synth"]["dropped"] == [{"reason": "noise", "count": 1}]


# --- config and inputs ---------------------------------------------------------------------


def config_of(**data: Any) -> Any:
    from magpie_hub_plugins.recipe_instruct_synth import InstructSynthConfig

    from magpie_hub.config import validate

    return validate({"recipe": "instruct-synth", **data}, InstructSynthConfig)


def test_long_texts_split_to_fit_the_context(tmp_path: Path) -> None:
    from magpie_hub_plugins.recipe_instruct_synth import pieces

    corpus = tmp_path / "corpus.jsonl"
    long = " ".join(f"w{i}." for i in range(2500))
    corpus.write_text(json.dumps({"text": long}) + "\n" + json.dumps({"text": "Short."}) + "\n")
    cfg = config_of(corpus={"source": str(corpus)})
    found, read = pieces(cfg)
    assert cfg.budget_words() == int((2048 - 400) / 1.5)
    assert all(synth.words(p["text"]) <= cfg.piece_words() for p in found)
    assert sum(synth.words(p["text"]) for p in found if p["text_index"] == 0) == 2500
    assert found[-1] == {"text": "Short.", "text_index": 1, "piece": 0, "pieces": 1}
    assert read.record["column"] == "text"
    with pytest.raises(ConfigValidationError, match="does not fit the context"):
        config_of(max_text_words=5000)


def test_corpus_from_files_and_a_hub_dataset(hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from huggingface_hub import CommitOperationAdd, HfApi
    from magpie_hub_plugins.recipe_instruct_synth import read_corpus

    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("Text A.\n\nSecond paragraph.")
    (folder / "b.txt").write_text("Text B.")
    assert read_corpus(config_of(corpus={"source": str(folder)})).texts == [
        "Text A.\n\nSecond paragraph.",
        "Text B.",
    ]
    assert read_corpus(config_of(corpus={"source": str(folder / "b.txt")})).texts == ["Text B."]

    repo = f"alice/corpus-{os.urandom(4).hex()}"
    HfApi().create_repo(repo, repo_type="dataset")
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{"content": "From the Hub.", "id": 1}]), sink)
    ops = [CommitOperationAdd(path_in_repo="data/train.parquet", path_or_fileobj=sink.getvalue())]
    HfApi().create_commit(repo, ops, commit_message="corpus", repo_type="dataset")
    hub_corpus = read_corpus(config_of(corpus={"source": repo}))
    assert hub_corpus.texts == ["From the Hub."] and hub_corpus.record["column"] == "content"
    with pytest.raises(ImportSourceError, match="has no column 'body'"):
        read_corpus(config_of(corpus={"source": repo, "column": "body"}))


def test_check_refuses_more_rows_than_texts() -> None:
    from magpie_hub_plugins.recipe_instruct_synth import check

    with pytest.raises(ConfigError, match="the corpus gives 8 texts") as exc:
        check(config_of(num_rows=9), None)  # type: ignore[arg-type]
    assert "at most 8" in (exc.value.hint or "")
    check(config_of(num_rows=8), None)  # type: ignore[arg-type]


def test_views_pairs_and_pretrain() -> None:
    from magpie_hub_plugins.recipe_instruct_synth import views

    pairs = [{"question": "Q?", "answer": "A."}]
    row = {
        "uuid": "u",
        "text": "T.",
        "text_index": 0,
        "piece": 0,
        "pairs": pairs,
        "conversation": synth.conversation("T.", pairs),
    }
    made = views([row], config_of())
    assert made["pairs"].rows == [row] and made["pairs"].counts == {"pairs": 1}
    assert made["pretrain"].rows == [{"uuid": "u", "text": "T.\n\nQuestion: Q?\nAnswer: A."}]


@pytest.mark.slow
@pytest.mark.embedded
def test_starter_config_end_to_end_on_the_embedded_model(
    cli, embedded_model: Path, tmp_path: Path
) -> None:
    from datasets import load_dataset

    config = tmp_path / "magpie-hub.toml"
    assert cli("init", str(config), "--recipe", "instruct-synth").exit_code == 0
    build, tree = tmp_path / "build", tmp_path / "tree"
    sets = ["--set", "synth.max_new_tokens=200"]
    result = cli("generate", str(config), "--out", str(build), "-n", "4", "--json", *sets)
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["generated"] + summary["dropped"] == 4
    assert set(summary["dropped_by_reason"]) <= {"no_pairs"}
    assert summary["generated"] >= 1, summary  # the built-in examples show SmolLM2 the format
    args = ("publish", str(config), "--repo", "alice/synth", "--tag", "v1", "--out", str(build))
    published = cli(*args, "--local", str(tree), *sets)
    assert published.exit_code == 0, published.stderr
    card = (tree / "README.md").read_text()
    assert "## Synthesized pairs" in card and "Texts: magpie-hub's built-in set" in card
    default = load_dataset(str(tree), "default", split="train").to_list()
    pairs = load_dataset(str(tree), "pairs", split="train").to_list()
    assert [r["pairs"] for r in pairs] == [r["pairs"] for r in default]
    for row in default:
        keys = [" ".join(p["question"].casefold().split()) for p in row["pairs"]]
        assert len(keys) == len(set(keys))
    pretrain = load_dataset(str(tree), "pretrain", split="train").to_list()
    assert all(p["text"].startswith(d["text"]) for p, d in zip(pretrain, default, strict=True))
    assert "\nQuestion: " in pretrain[0]["text"]
    share = load_dataset(str(tree), "sharegpt", split="train").to_list()
    assert len(share) == len(default)
    assert share[0]["conversations"][0]["value"].startswith(default[0]["text"])
    single = sum(1 for r in default if len(r["pairs"]) == 1)  # alpaca: single turns only
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["views"]["alpaca"]["rows"] == single
    assert manifest["views"]["alpaca"]["left_out_multi_turn"] == len(default) - single
    if single:  # an empty view is no config
        assert len(load_dataset(str(tree), "alpaca", split="train")) == single
