"""`magpie-hub import`: build folders from files and Hub datasets made elsewhere."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from magpie_hub.errors import ImportSourceError
from magpie_hub.generate.importer import UUID_NAMESPACE, features, import_build


def rows_of(build: Path) -> list[dict[str, Any]]:
    return [
        r for f in sorted((build / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]


def manifest_of(build: Path) -> dict[str, Any]:
    return json.loads((build / "manifest.json").read_text())


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path -> sha256): to check it did not change."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pair(instruction: str, response: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]


def test_jsonl_instruction_response(cli, tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"instruction": "Name a prime.", "response": "7", "model": "m1", "topic": "math"},
            {"instruction": "  ", "response": "blank instruction", "model": "m1"},
            {"instruction": "No answer", "response": None, "model": "m2"},
            {"instruction": "Say hi.", "response": "Hi!", "model": "m1"},
            {"instruction": "Another?", "response": "Yes.", "model": "m2"},
        ],
    )
    build = tmp_path / "build"
    result = cli("import", str(source), "--out", str(build))
    assert result.exit_code == 0, result.stderr
    assert "rows read" in result.stdout and "empty_instruction: 1" in result.stdout
    rows = rows_of(build)
    assert [(r["instruction"], r["response"], r["model"]) for r in rows] == [
        ("Name a prime.", "7", "m1"),
        ("Say hi.", "Hi!", "m1"),
        ("Another?", "Yes.", "m2"),
    ]
    assert rows[0]["conversation"] == pair("Name a prime.", "7")
    assert rows[0]["system_prompt"] is None
    assert "topic" not in rows[0]  # other source columns are not carried
    from datasets import Features

    shard = build / "data" / "train-00000-of-00001.parquet"
    assert Features.from_arrow_schema(pq.read_schema(shard)) == features()

    m = manifest_of(build)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert m["recipe"] == "import" and m["status"] == "complete"
    assert m["fingerprint"] == digest[:16]
    assert m["source"]["kind"] == "file" and m["source"]["path"] == "pairs.jsonl"
    assert m["source"]["sha256"] == digest
    assert m["source"]["columns_read"] == ["instruction", "response", "model"]
    assert m["model"] == {"id": "m1", "engine": "import", "models": {"m1": 2, "m2": 1}}
    assert m["counts"] == {
        "requested": 5,
        "generated": 3,
        "dropped": 2,
        "dropped_by_reason": {"empty_instruction": 1, "empty_response": 1},
        "pending": 0,
    }
    assert m["data_files"] == ["data/train-00000-of-00001.parquet"]
    assert m["views"] == {} and m["created"] and m["updated"]
    assert {"magpie-hub", "datasets"} <= set(m["versions"])
    assert m["features"] == features().to_dict()
    # derived ids: uuid5 of the fingerprint and the source row, the same on every import
    assert rows[1]["uuid"] == str(uuid.uuid5(UUID_NAMESPACE, f"{m['fingerprint']}/3"))
    again = import_build(str(source), tmp_path / "again")
    assert [r["uuid"] for r in rows_of(again.out)] == [r["uuid"] for r in rows]
    assert len({r["uuid"] for r in rows}) == 3


def test_a_json_array_file_is_read_too(tmp_path: Path) -> None:
    source = tmp_path / "alpaca-like.json"
    source.write_text(json.dumps([{"instruction": "Q", "response": "A", "n": [1, "mixed"]}]))
    result = import_build(str(source), tmp_path / "build")
    assert result.manifest["counts"]["generated"] == 1
    assert rows_of(tmp_path / "build")[0]["conversation"] == pair("Q", "A")


def test_parquet_sharegpt_conversations(cli, tmp_path: Path) -> None:
    def sg(*turns: tuple[str, str]) -> list[dict[str, str]]:
        return [{"from": f, "value": v} for f, v in turns]

    conversations = [
        sg(
            ("system", "Be brief."),
            ("human", "Hi"),
            ("gpt", "Hello"),
            ("human", "More"),
            ("gpt", "Ok"),
        ),
        sg(("gpt", "An answer to nothing")),
        sg(("human", "Unanswered")),
        sg(("human", "Q"), ("gpt", "")),
        sg(("human", "2+2?"), ("gpt", "4")),
    ]
    table = pa.table(
        {"conversations": conversations, "uuid": ["a", "b", "c", "d", "e"], "x": [1] * 5}
    )
    pq.write_table(table, tmp_path / "sharegpt.parquet")
    build = tmp_path / "build"
    result = cli("import", str(tmp_path / "sharegpt.parquet"), "--out", str(build), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows_read"] == 5 and summary["written"] == 2
    assert summary["dropped_by_reason"] == {
        "empty_response": 1,
        "no_assistant_turn": 1,
        "no_user_turn": 1,
    }
    first, second = rows_of(build)
    assert first["uuid"] == "a" and second["uuid"] == "e"  # the source's unique ids
    assert (first["instruction"], first["response"], first["system_prompt"]) == (
        "Hi",
        "Hello",
        "Be brief.",
    )
    assert first["conversation"] == [
        {"role": "system", "content": "Be brief."},
        *pair("Hi", "Hello"),
        *pair("More", "Ok"),
    ]
    assert second["conversation"] == pair("2+2?", "4") and second["model"] is None
    m = manifest_of(build)
    assert m["source"]["columns_read"] == ["conversations", "uuid"]
    assert m["source"]["uuid"] == "source column" and m["model"]["id"] == "unknown"


def test_csv(cli, tmp_path: Path) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["instruction", "response", "model", "system_prompt"])
    writer.writerow(
        ["Write a haiku\nabout rain.", "Drops on the window,\n...", "", "You are a poet."]
    )
    writer.writerow(["123", "456", "m", ""])
    writer.writerow(["", "nothing asked", "m", ""])
    (tmp_path / "data.csv").write_text(text.getvalue(), encoding="utf-8")
    build = tmp_path / "build"
    result = cli("import", str(tmp_path / "data.csv"), "--out", str(build))
    assert result.exit_code == 0, result.stderr
    poem, numbers = rows_of(build)
    assert poem["instruction"] == "Write a haiku\nabout rain." and poem["model"] is None
    assert poem["system_prompt"] == "You are a poet."
    assert poem["conversation"][0] == {"role": "system", "content": "You are a poet."}
    assert (numbers["instruction"], numbers["response"], numbers["model"]) == ("123", "456", "m")
    assert numbers["system_prompt"] is None and len(numbers["conversation"]) == 2
    assert manifest_of(build)["counts"]["dropped_by_reason"] == {"empty_instruction": 1}


def test_openai_messages_with_a_system_message(cli, tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "chat.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "Answer in French."},
                    {"role": "user", "content": "Hello"},
                    {"role": "assistant", "content": "Bonjour"},
                ],
                "model": "gpt-x",
            },
            {
                "messages": [{"role": "system", "content": "Only a system prompt."}],
                "model": "gpt-x",
            },
            {"messages": pair("Plain", "Answer"), "model": None},
        ],
    )
    build = tmp_path / "build"
    assert cli("import", str(source), "--out", str(build)).exit_code == 0
    french, plain = rows_of(build)
    assert french["system_prompt"] == "Answer in French."
    assert french["conversation"] == [
        {"role": "system", "content": "Answer in French."},
        *pair("Hello", "Bonjour"),
    ]
    assert (french["instruction"], french["response"], french["model"]) == (
        "Hello",
        "Bonjour",
        "gpt-x",
    )
    assert plain["system_prompt"] is None and plain["model"] is None
    m = manifest_of(build)
    assert m["counts"]["dropped_by_reason"] == {"no_user_turn": 1}
    assert m["model"]["id"] == "gpt-x"


def test_duplicate_source_ids_are_replaced_by_derived_ones(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "dups.jsonl",
        [{"uuid": "same", "instruction": f"Q{i}", "response": "A"} for i in range(3)],
    )
    result = import_build(str(source), tmp_path / "build")
    ids = [r["uuid"] for r in rows_of(tmp_path / "build")]
    assert len(set(ids)) == 3 and "same" not in ids
    assert result.manifest["source"]["uuid"] == "derived"


# --- the Hub ------------------------------------------------------------------------------

README = """---
configs:
- config_name: alpha
  default: true
  data_files:
  - split: train
    path: alpha/train.parquet
  - split: test
    path: alpha/test.parquet
- config_name: beta
  data_files:
  - split: train
    path: beta/train.parquet
---
# test data
"""


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def qa(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"instruction": q, "response": a} for q, a in pairs]


def push_files(repo: str, files: dict[str, bytes], message: str) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi

    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=b) for p, b in files.items()]
    info = HfApi().create_commit(repo, ops, commit_message=message, repo_type="dataset")
    return str(info.oid)


@pytest.fixture
def hub_dataset(hub) -> str:  # type: ignore[no-untyped-def]
    """A dataset on the emulator: configs alpha (train, test) and beta (train), tagged v1,
    then a second commit that changes alpha's train split."""
    from huggingface_hub import HfApi

    repo = f"alice/import-{os.urandom(4).hex()}"
    HfApi().create_repo(repo, repo_type="dataset")
    files = {
        "README.md": README.encode(),
        "alpha/train.parquet": parquet_bytes(qa(("a1", "x"), ("a2", "y"), ("", "dropped"))),
        "alpha/test.parquet": parquet_bytes(qa(("t1", "z"))),
        "beta/train.parquet": parquet_bytes([{"messages": pair("b1", "w"), "model": "beta-model"}]),
    }
    commit = push_files(repo, files, "first")
    HfApi().create_tag(repo, tag="v1", revision=commit, repo_type="dataset")
    push_files(repo, {"alpha/train.parquet": parquet_bytes(qa(("a3", "new")))}, "second")
    return repo


def test_a_hub_dataset_with_config_split_and_revision(
    cli, hub_dataset: str, tmp_path: Path
) -> None:
    def imported(*args: str) -> tuple[list[str], dict[str, Any]]:
        build = tmp_path / f"build-{len(list(tmp_path.iterdir()))}"
        result = cli("import", hub_dataset, "--out", str(build), *args)
        assert result.exit_code == 0, result.stderr
        return [r["instruction"] for r in rows_of(build)], manifest_of(build)

    latest, m = imported()
    assert latest == ["a3"]
    assert m["source"]["kind"] == "hub" and m["source"]["repo_id"] == hub_dataset
    assert m["source"]["split"] == "train" and m["source"]["revision"] is None
    assert len(m["source"]["commit"]) == 40
    tagged, m_v1 = imported("--revision", "v1")
    assert tagged == ["a1", "a2"]
    assert m_v1["counts"]["dropped_by_reason"] == {"empty_instruction": 1}
    assert m_v1["source"]["revision"] == "v1" and m_v1["source"]["commit"] != m["source"]["commit"]
    assert m_v1["fingerprint"] != m["fingerprint"]
    test_split, m_test = imported("--split", "test", "--revision", "v1")
    assert test_split == ["t1"] and m_test["source"]["split"] == "test"
    beta, m_beta = imported("--config", "beta")
    assert beta == ["b1"]
    assert m_beta["source"]["config"] == "beta" and m_beta["model"]["id"] == "beta-model"
    assert m_beta["source"]["columns_read"] == ["messages", "model"]


def test_hub_errors_are_one_message_and_leave_the_folder_untouched(
    cli, hub_dataset: str, tmp_path: Path
) -> None:
    build = import_build(str(write_jsonl(tmp_path / "s.jsonl", qa(("Q", "A")))), tmp_path / "b").out
    before = snapshot(build)
    for args, message in (
        (["alice/no-such-dataset"], "alice/no-such-dataset: no such dataset on the Hub"),
        ([hub_dataset, "--split", "validation"], 'Unknown split "validation"'),
        ([hub_dataset, "--config", "gamma"], "BuilderConfig 'gamma' not found"),
        ([hub_dataset, "--revision", "nope"], "has no revision 'nope'"),
    ):
        result = cli("import", *args, "--out", str(build), "--force")
        assert result.exit_code == 1 and message in result.stderr, result.stderr
        assert "Hint:" in result.stderr and "Traceback" not in result.stderr
        assert snapshot(build) == before


# --- errors and the target folder ---------------------------------------------------------


@pytest.fixture
def earlier_import(tmp_path: Path) -> Path:
    source = write_jsonl(tmp_path / "earlier.jsonl", qa(("Q", "A")))
    return import_build(str(source), tmp_path / "build").out


def test_source_errors_are_one_message_and_leave_the_folder_untouched(
    cli, tmp_path: Path, earlier_import: Path
) -> None:
    before = snapshot(earlier_import)
    (tmp_path / "notes.txt").write_text("instruction,response\n")
    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "p", "completion": "c"}])
    write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"conversations": [{"from": "human", "value": "ok"}]},
            {"conversations": [{"from": "human", "value": "ok"}]},
            {"conversations": "not a list"},
        ],
    )
    cases = {
        str(tmp_path / "missing.jsonl"): ["missing.jsonl: no such file"],
        str(tmp_path / "notes.txt"): ["unsupported file type '.txt'", ".parquet"],
        str(tmp_path / "prompts.jsonl"): [
            "no usable columns; found: prompt, completion; accepted: instruction + response",
            "conversations",
        ],
        str(tmp_path / "bad.jsonl"): ["column 'conversations' has a bad shape at row index 2"],
    }
    for source, expected in cases.items():  # even --force leaves the folder as it was
        result = cli("import", source, "--out", str(earlier_import), "--force")
        assert result.exit_code == 1, source
        for text in expected:
            assert text in result.stderr, (source, result.stderr)
        assert "Hint:" in result.stderr and "Traceback" not in result.stderr
        assert snapshot(earlier_import) == before
    options = cli(
        "import", str(tmp_path / "prompts.jsonl"), "--out", str(tmp_path / "b"), "--config", "x"
    )
    assert options.exit_code == 1 and "apply to Hub datasets" in options.stderr
    with pytest.raises(ImportSourceError) as info:
        import_build(str(tmp_path / "prompts.jsonl"), tmp_path / "b")
    assert info.value.columns == ["prompt", "completion"]
    assert info.value.source == str(tmp_path / "prompts.jsonl")
    assert not (tmp_path / "b").exists()


def test_the_out_folder_is_refused_unless_it_is_the_same_import_or_forced(
    cli, tmp_path: Path, earlier_import: Path
) -> None:
    other = write_jsonl(tmp_path / "other.jsonl", qa(("Other", "Data")))
    same = tmp_path / "earlier.jsonl"
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    generated = tmp_path / "generated"
    generated.mkdir()
    (generated / "manifest.json").write_text(json.dumps({"recipe": "magpie", "status": "complete"}))
    for folder, message in (
        (precious, "holds no magpie-hub build"),
        (generated, "holds a build of recipe 'magpie'"),
        (earlier_import, "holds an import of another source (earlier.jsonl)"),
    ):
        before = snapshot(folder)
        result = cli("import", str(other), "--out", str(folder))
        assert result.exit_code == 1 and message in result.stderr, result.stderr
        assert "--force" in result.stderr and snapshot(folder) == before

    # the same source again: re-imported, keeping its creation time and views
    m = manifest_of(earlier_import)
    (earlier_import / "data" / "reviewed").mkdir()
    pq.write_table(pa.table({"uuid": ["x"]}), earlier_import / "data" / "reviewed" / "t.parquet")
    m["views"] = {"reviewed": {"rows": 1}, "gone": {"rows": 0}}
    (earlier_import / "manifest.json").write_text(json.dumps(m))
    again = cli("import", str(same), "--out", str(earlier_import), "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["previous"] == "same source"
    m_again = manifest_of(earlier_import)
    assert m_again["created"] == m["created"] and m_again["views"] == {"reviewed": {"rows": 1}}

    # --force replaces another build
    forced = cli("import", str(other), "--out", str(earlier_import), "--force", "--json")
    assert forced.exit_code == 0, forced.stderr
    assert json.loads(forced.stdout)["previous"] == "replaced"
    assert [r["instruction"] for r in rows_of(earlier_import)] == ["Other"]
    assert manifest_of(earlier_import)["source"]["path"] == "other.jsonl"
    assert not (earlier_import / "data" / "reviewed").exists()


# --- what an imported build is good for ---------------------------------------------------


def test_an_imported_build_has_a_card_and_a_release(cli, tmp_path: Path) -> None:
    from datasets import load_dataset

    source = write_jsonl(
        tmp_path / "chat.jsonl",
        [
            {"messages": pair(f"Question {i}?", f"Answer {i}."), "model": "their-model"}
            for i in range(4)
        ]
        + [{"messages": [{"role": "user", "content": "unanswered"}]}],
    )
    build = tmp_path / "build"
    assert cli("import", str(source), "--out", str(build)).exit_code == 0
    card = cli("card", str(build), "--repo", "alice/imported")
    assert card.exit_code == 0, card.stderr
    assert card.stdout.startswith("---\nlicense: other\n")
    assert "imported by [magpie-hub]" in card.stdout and "from `chat.jsonl`" in card.stdout
    assert "| source | `chat.jsonl` (sha256 " in card.stdout
    assert "| no_assistant_turn | 1 |" in card.stdout
    assert "magpie-hub import chat.jsonl --out build" in card.stdout
    assert "pre-query" not in card.stdout and "sha256 `None" not in card.stdout
    tree = tmp_path / "tree"
    local = cli("push", str(build), "--repo", "alice/imported", "--local", str(tree))
    assert local.exit_code == 0, local.stderr
    assert load_dataset(str(tree), "default", split="train").to_list() == rows_of(build)


def test_imported_rows_have_review_records(tmp_path: Path) -> None:
    from magpie_hub.plugins import get_registry
    from magpie_hub.registry import ReviewOptions

    source = write_jsonl(tmp_path / "s.jsonl", qa(("Q", "A")))
    import_build(str(source), tmp_path / "build")
    row = rows_of(tmp_path / "build")[0]
    record = get_registry().review_specs["import"].record(row, ReviewOptions())
    assert record["id"] == row["uuid"] and record["fields"]["conversation"] == pair("Q", "A")
