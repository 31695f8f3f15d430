"""A bad-input corpus: every case is one bad input given to the CLI, in process.

Each must end with exit code 1, an `Error:` line naming the problem (one distinctive
substring per case: the field, file or value), a `Hint:`, no traceback, and the data
that was there before (a build folder, an import, the input files) byte for byte as
it was. No case loads a model: models are missing, damaged, or a metadata-only GGUF.

Cases the product gets wrong today are kept, marked `xfail(strict=True)` with what is
wrong, so the corpus turns green (and the marks must go) as soon as they are fixed.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytest
from conftest import CliResult, free_port
from curate_helpers import curate_config, make_build, tree_digest

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
BAD_JINJA = "{% for m in messages %}{{ m.content }"  # `}` where `}}` belongs
RAISES = "{{ raise_exception('System role not supported') }}"


@dataclass
class Case:
    args: list[str]
    expect: str
    """A substring of stderr that only the right error contains."""
    watch: list[Path] | None = None
    """Folders that must not change (default: the builds the case made, `Env.made`)."""


@dataclass
class Env:
    """What a case sets up in: its tmp_path, a monkeypatch, and lazily made inputs."""

    tmp: Path
    mp: pytest.MonkeyPatch
    made: list[Path] = field(default_factory=list)
    """The build folders made so far (`build`, `imported`): existing data to keep."""

    @cached_property
    def build(self) -> Path:
        """A finished single-turn build (recipe magpie, fingerprint "test"), no model."""
        self.made.append(make_build(self.tmp / "build"))
        return self.made[-1]

    @cached_property
    def inputs(self) -> Path:
        folder = self.tmp / "in"
        folder.mkdir()
        return folder

    @cached_property
    def imported(self) -> Path:
        """A build made by `import` from a good JSON-lines file."""
        from magpie_hub.generate.importer import import_build

        source = self.file("good.jsonl", json.dumps({"instruction": "Q", "response": "A"}) + "\n")
        self.made.append(import_build(str(source), self.tmp / "imported").out)
        return self.made[-1]

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.inputs / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def folder(self, name: str, *files: str) -> Path:
        """A folder under tmp holding `files` (each with a line of text)."""
        path = self.tmp / name
        path.mkdir()
        for f in files:
            (path / f).write_text(f"{f}: keep me\n")
        return path

    def gguf(self, chat_template: str | None = CHATML) -> Path:
        """A GGUF holding metadata only (a chat template, no tensors): inspected, never run."""
        from gguf import GGUFWriter

        path = self.inputs / "tiny.gguf"
        writer = GGUFWriter(str(path), "llama")
        writer.add_name("tiny")
        if chat_template is not None:
            writer.add_chat_template(chat_template)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    def generate(self, config: str, *extra: str, out: Path | None = None) -> list[str]:
        """`generate CONFIG --out OUT` (default: over the finished build)."""
        path = self.file("c.toml", config)
        return ["generate", str(path), "--out", str(out or self.build), *extra]

    def engine(self, *, extra: str = "", chat_template: str | None = CHATML) -> str:
        """An [engine] table naming the metadata-only GGUF."""
        return f'[engine]\nname = "llamacpp"\nmodel = "{self.gguf(chat_template)}"\n{extra}'

    def curate(self, taggers: list[str], extra: str = "", judge: str = "") -> list[str]:
        config = curate_config(self.inputs / "curate.toml", taggers, extra=extra, judge=judge)
        return ["curate", str(config), "--out", str(self.build)]

    def judge(self) -> str:
        return f'[curate.judge]\nname = "llamacpp"\nmodel = "{self.gguf()}"\n'

    def import_(self, source: Path | str, *extra: str) -> list[str]:
        """`import SOURCE --out <an earlier import> --force`: even --force keeps it."""
        return ["import", str(source), "--out", str(self.imported), "--force", *extra]


Setup = Callable[[Env], Case]
CASES: list[object] = []


def case(xfail: str | None = None) -> Callable[[Setup], Setup]:
    """Add a setup to the corpus; `xfail` says what the product does wrong today."""

    def add(setup: Setup) -> Setup:
        marks = [pytest.mark.xfail(reason=xfail, strict=True)] if xfail else []
        CASES.append(pytest.param(setup, id=setup.__name__.replace("_", "-"), marks=marks))
        return setup

    return add


# --- configs ------------------------------------------------------------------------------


@case()
def toml_syntax_error(env: Env) -> Case:
    return Case(env.generate("num_rows = = 3\n"), "not valid TOML")


@case()
def unknown_top_level_key(env: Env) -> Case:
    return Case(env.generate("num_rowz = 5\n"), "num_rowz: unknown field; allowed here:")


@case()
def unknown_nested_key(env: Env) -> Case:
    return Case(env.generate("[engine]\nmodle = 'x.gguf'\n"), "engine.modle: unknown field")


@case()
def wrong_type(env: Env) -> Case:
    return Case(
        env.generate("batch_size = 'eight'\n"), "batch_size: Input should be a valid integer"
    )


@case()
def num_rows_zero(env: Env) -> Case:
    return Case(
        env.generate("num_rows = 0\n"), "num_rows: Input should be greater than or equal to 1"
    )


@case()
def temperature_nine(env: Env) -> Case:
    return Case(env.generate("[instruction]\ntemperature = 9\n"), "instruction.temperature")


@case()
def seed_out_of_range(env: Env) -> Case:
    return Case(env.generate("seed = -1\n"), "seed: Input should be greater than or equal to 0")


@case()
def unknown_recipe(env: Env) -> Case:
    return Case(env.generate("recipe = 'magpie-2'\n"), "unknown recipe 'magpie-2'; available:")


@case()
def recipe_not_a_string(env: Env) -> Case:
    return Case(env.generate("recipe = 3\n"), "recipe: must be a string, got 3")


@case()
def unknown_engine(env: Env) -> Case:
    return Case(env.generate("[engine]\nname = 'nope'\n"), "unknown engine 'nope'; available:")


@case()
def unknown_template_preset(env: Env) -> Case:
    config = env.engine(extra='template = "llama99"\n')
    return Case(env.generate(config), "unknown template preset 'llama99'")


@case()
def unknown_template_system(env: Env) -> Case:
    return Case(env.generate("[engine]\ntemplate_system = 'maybe'\n"), "engine.template_system")


@case()
def set_without_equals(env: Env) -> Case:
    args = env.generate("", "--set", "engine.threads")
    return Case(args, "--set expects dotted.key=value, got 'engine.threads'")


@case()
def set_with_empty_key(env: Env) -> Case:
    return Case(env.generate("", "--set", "=3"), "--set expects dotted.key=value, got '=3'")


@case()
def set_out_of_range(env: Env) -> Case:
    return Case(env.generate("", "--set", "engine.threads=0"), "engine.threads")


@case()
def set_into_a_plain_value(env: Env) -> Case:
    args = env.generate("num_rows = 5\n", "--set", "num_rows.x=1")
    return Case(args, "'num_rows' is not a table")


@case()
def missing_config_file(env: Env) -> Case:
    missing = env.tmp / "nope.toml"
    return Case(
        ["generate", str(missing), "--out", str(env.build)], "nope.toml: config file not found"
    )


@case()
def config_is_a_folder(env: Env) -> Case:
    folder = env.folder("config-folder")
    return Case(["generate", str(folder), "--out", str(env.build)], "config-folder")


@case()
def config_not_utf8(env: Env) -> Case:
    path = env.file("latin1.toml", "# caf\xe9\nnum_rows = 3\n".encode("latin-1"))
    return Case(["generate", str(path), "--out", str(env.build)], "latin1.toml")


@case()
def render_date_month_13(env: Env) -> Case:
    config = "[engine]\nrender_date = '2026-13-01'\n"
    return Case(env.generate(config), "'2026-13-01' is not a date as YYYY-MM-DD")


@case()
def system_prompt_unknown_category(env: Env) -> Case:
    return Case(env.generate("system_prompt = '@cooking'\n"), "unknown system prompt '@cooking'")


@case()
def system_prompt_list_with_unknown_category(env: Env) -> Case:
    config = "system_prompt = ['@math', '@cooking']\n"
    return Case(env.generate(config), "unknown system prompt '@cooking'")


@case()
def system_prompt_table_negative_weight(env: Env) -> Case:
    config = "[system_prompt.terse]\nprompt = 'Be brief.'\nweight = -1\n"
    return Case(env.generate(config), "system_prompt.dict[str,WeightedPrompt].terse.weight")


@case()
def system_prompt_table_unknown_category(env: Env) -> Case:
    config = "[system_prompt.terse]\nprompt = '@cooking'\nweight = 2\n"
    return Case(env.generate(config), "unknown system prompt '@cooking'")


@case()
def system_prompt_with_a_preset(env: Env) -> Case:
    """A model without a chat template, a preset, and a system prompt the preset cannot
    render (a model with a template renders it through its own template)."""
    fresh = env.folder("fresh")
    engine = env.engine(extra='template = "chatml"\n', chat_template=None)
    config = "system_prompt = 'Be brief.'\n" + engine
    return Case(env.generate(config, out=fresh), "presets have none", [fresh])


# --- CLI arguments ------------------------------------------------------------------------


@case()
def num_rows_option_zero(env: Env) -> Case:
    return Case(
        env.generate("", "-n", "0"), "num_rows: Input should be greater than or equal to 1 (got 0)"
    )


@case()
def num_rows_option_negative(env: Env) -> Case:
    return Case(env.generate("", "-n", "-5"), "(got -5)")


# --- model files --------------------------------------------------------------------------


@case()
def missing_gguf(env: Env) -> Case:
    gone = env.tmp / "gone.gguf"
    return Case(env.generate(f'[engine]\nmodel = "{gone}"\n'), f"model not found: {gone}")


@case()
def random_bytes_gguf(env: Env) -> Case:
    path = env.file("random.gguf", os.urandom(4096))
    return Case(
        env.generate(f'[engine]\nmodel = "{path}"\n'), "random.gguf: not a readable GGUF file"
    )


@case()
def empty_gguf(env: Env) -> Case:
    path = env.file("empty.gguf", b"")
    return Case(
        env.generate(f'[engine]\nmodel = "{path}"\n'), "empty.gguf: not a readable GGUF file"
    )


@case()
def truncated_gguf(env: Env) -> Case:
    whole = env.gguf().read_bytes()
    path = env.file("cut.gguf", whole[:40])
    return Case(env.generate(f'[engine]\nmodel = "{path}"\n'), "cut.gguf: not a readable GGUF file")


@case()
def unknown_embedded_model(env: Env) -> Case:
    config = '[engine]\nmodel = "embedded:llama-7b"\n'
    return Case(env.generate(config), "model not found: embedded:llama-7b")


@case()
def transformers_folder_without_config(env: Env) -> Case:
    folder = env.folder("not-a-model")
    config = f'[engine]\nname = "transformers"\nmodel = "{folder}"\n'
    return Case(env.generate(config), "config.json")


@case()
def gguf_given_to_transformers(env: Env) -> Case:
    config = f'[engine]\nname = "transformers"\nmodel = "{env.gguf()}"\n'
    return Case(env.generate(config), "The transformers engine takes a model folder")


@case()
def folder_given_to_llamacpp(env: Env) -> Case:
    folder = env.folder("model-folder", "config.json")
    config = f'[engine]\nname = "llamacpp"\nmodel = "{folder}"\n'
    return Case(env.generate(config), "The llamacpp engine takes a .gguf file")


@case()
def gguf_without_chat_template(env: Env) -> Case:
    config = env.engine(chat_template=None)
    return Case(env.generate(config), "tiny: has no chat template")


# --- chat templates -----------------------------------------------------------------------


def show(env: Env, source: Path, expect: str | None = None) -> Case:
    """`templates show SOURCE`; the message names SOURCE unless `expect` says otherwise."""
    return Case(["templates", "show", str(source)], expect or str(source), [env.inputs])


@case()
def templates_show_syntax_error(env: Env) -> Case:
    return show(env, env.file("broken.jinja", BAD_JINJA))


@case()
def templates_show_raise_exception(env: Env) -> Case:
    path = env.file("refuses.jinja", RAISES)
    return show(env, path, "refused ['user']: System role not supported")


@case()
def templates_show_missing_file(env: Env) -> Case:
    return show(env, env.inputs / "missing.jinja")


@case()
def templates_show_renders_no_user_message(env: Env) -> Case:
    path = env.file("hello.jinja", "hello")
    return show(env, path, "does not render user messages")


@case()
def templates_show_tokenizer_config_without_template(env: Env) -> Case:
    path = env.file("tokenizer_config.json", '{"bos_token": "<s>"}')
    return show(env, path, "tokenizer_config.json: has no chat template")


@case()
def templates_show_bad_json(env: Env) -> Case:
    path = env.file("tokenizer_config.json", "{not json")
    return show(env, path, "not a tokenizer_config.json")


@case()
def templates_show_not_utf8(env: Env) -> Case:
    path = env.file("latin1.jinja", "caf\xe9 {{ messages }}".encode("latin-1"))
    return show(env, path)


@case()
def templates_show_runtime_error(env: Env) -> Case:
    path = env.file("calls.jinja", "{{ messages[0].content.shout() }}")
    return show(env, path)


@case()
def engine_chat_template_syntax_error(env: Env) -> Case:
    config = env.engine(extra=f"chat_template = {json.dumps(BAD_JINJA)}\n")
    return Case(env.generate(config), "the chat template cannot be rendered: TemplateSyntaxError")


@case()
def engine_chat_template_raise_exception(env: Env) -> Case:
    config = env.engine(extra=f"chat_template = {json.dumps(RAISES)}\n")
    return Case(env.generate(config), "the chat template refused ['user']")


# --- build folders ------------------------------------------------------------------------


@case()
def curate_never_generated(env: Env) -> Case:
    (env.build / "manifest.json").unlink()
    return Case(env.curate(["language"]), "not a build folder (no manifest.json)")


@case()
def curate_incomplete_build(env: Env) -> Case:
    manifest = json.loads((env.build / "manifest.json").read_text())
    (env.build / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    return Case(env.curate(["language"]), "the build is running, not complete")


@case()
def curate_damaged_manifest(env: Env) -> Case:
    (env.build / "manifest.json").write_text('{"status": "complete", ')
    return Case(env.curate(["language"]), "manifest.json is damaged")


@case()
def generate_over_damaged_manifest(env: Env) -> Case:
    (env.build / "manifest.json").write_text("{not json")
    return Case(env.generate(env.engine()), "manifest.json is damaged")


@case()
def card_non_build(env: Env) -> Case:
    folder = env.folder("notes", "notes.txt")
    return Case(["card", str(folder)], "not a build folder (no manifest.json)", [folder])


@case()
def card_incomplete_build(env: Env) -> Case:
    manifest = json.loads((env.build / "manifest.json").read_text())
    (env.build / "manifest.json").write_text(json.dumps({**manifest, "status": "incomplete"}))
    return Case(["card", str(env.build)], "the build is incomplete, not complete")


@case()
def push_local_non_build(env: Env) -> Case:
    folder = env.folder("notes", "notes.txt")
    args = ["push", str(folder), "--repo", "alice/x", "--local", str(env.tmp / "tree")]
    return Case(args, "not a build folder (no manifest.json)", [folder])


@case()
def push_local_over_a_folder_that_is_not_a_release(env: Env) -> Case:
    precious = env.folder("precious", "notes.txt")
    args = ["push", str(env.build), "--repo", "alice/x", "--local", str(precious)]
    return Case(args, "refusing to overwrite", [precious, env.build])


@case()
def generate_into_non_empty_non_build(env: Env) -> Case:
    folder = env.folder("precious", "notes.txt")
    return Case(env.generate(env.engine(), out=folder), "holds no magpie-hub build", [folder])


@case()
def generate_into_another_build(env: Env) -> Case:
    return Case(env.generate(env.engine()), "was built from a different config or model")


@case()
def generate_out_is_a_file(env: Env) -> Case:
    work = env.folder("work", "out.txt")
    return Case(env.generate(env.engine(), out=work / "out.txt"), "out.txt", [work])


@case()
def curate_without_section(env: Env) -> Case:
    path = env.file("c.toml", 'recipe = "magpie"\n')
    return Case(["curate", str(path), "--out", str(env.build)], "has no [curate] section")


@case()
def curate_unknown_key(env: Env) -> Case:
    path = env.file("c.toml", "[curate]\ntagers = ['language']\n")
    return Case(["curate", str(path), "--out", str(env.build)], "curate.tagers: unknown field")


@case()
def curate_unknown_tagger(env: Env) -> Case:
    return Case(env.curate(["language", "sentiment"]), "unknown tagger 'sentiment'; available:")


@case()
def curate_unknown_filter_preset(env: Env) -> Case:
    extra = '[filter]\npreset = "magpie-1m"\n'
    return Case(env.curate(["language"], extra), "unknown filter preset 'magpie-1m'")


@case()
def curate_rule_on_unknown_column(env: Env) -> Case:
    extra = '[filter]\nrules = [{column = "sentiment", op = "==", value = "happy"}]\n'
    return Case(env.curate(["language"], extra), "no column 'sentiment' in this build")


@case()
def curate_rule_on_an_untagged_column(env: Env) -> Case:
    extra = '[filter]\nrules = [{column = "input_quality", op = ">=", value = "good"}]\n'
    return Case(env.curate(["language"], extra), "Add the tagger 'quality'")


@case()
def curate_rule_unknown_operator(env: Env) -> Case:
    extra = '[filter]\nrules = [{column = "instruction", op = "~=", value = "x"}]\n'
    return Case(env.curate(["language"], extra), "filter.rules.0.op")


@case()
def curate_rule_unknown_label(env: Env) -> Case:
    extra = '[filter]\nrules = [{column = "input_quality", op = ">=", value = "great"}]\n'
    args = env.curate(["quality", "language"], extra, env.judge())
    return Case(args, "'great' is not a label of 'input_quality'")


@case()
def curate_rule_orders_unordered_labels(env: Env) -> Case:
    extra = '[filter]\nrules = [{column = "task_category", op = ">", value = "Math"}]\n'
    args = env.curate(["category"], extra, env.judge())
    return Case(args, "'task_category' labels have no order")


@case()
def curate_rule_in_without_a_list(env: Env) -> Case:
    extra = '[filter]\nrules = [{column = "instruction", op = "in", value = "x"}]\n'
    return Case(env.curate(["language"], extra), "in needs a list value")


# --- imports ------------------------------------------------------------------------------


@case()
def import_missing_file(env: Env) -> Case:
    return Case(env.import_(env.inputs / "missing.jsonl"), "missing.jsonl: no such file")


@case()
def import_no_usable_columns(env: Env) -> Case:
    path = env.file("prompts.jsonl", json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    return Case(env.import_(path), "no usable columns; found: prompt, completion")


@case()
def import_unsupported_extension(env: Env) -> Case:
    path = env.file("notes.txt", "instruction,response\n")
    return Case(env.import_(path), "unsupported file type '.txt'")


@case()
def import_bad_json_line(env: Env) -> Case:
    text = json.dumps({"instruction": "a", "response": "b"}) + "\n{not json\n"
    return Case(env.import_(env.file("bad.jsonl", text)), "is not valid JSON (line 2:")


@case()
def import_empty_file(env: Env) -> Case:
    return Case(env.import_(env.file("empty.jsonl", "")), "empty.jsonl: holds no rows")


@case()
def import_json_values_not_objects(env: Env) -> Case:
    path = env.file("numbers.json", "[1, 2, 3]")
    return Case(env.import_(path), "holds JSON values that are not objects")


@case()
def import_no_usable_rows(env: Env) -> Case:
    rows = [{"instruction": "a", "response": ""}, {"instruction": " ", "response": "b"}]
    path = env.file("blank.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return Case(env.import_(path), "none of its 2 rows is usable")


@case()
def import_non_text_column(env: Env) -> Case:
    path = env.file("typed.jsonl", json.dumps({"instruction": "a", "response": 3}) + "\n")
    return Case(env.import_(path), "column 'response' holds int, not text")


@case()
def import_bad_conversation_shape(env: Env) -> Case:
    path = env.file("conv.jsonl", json.dumps({"conversations": "not a list"}) + "\n")
    return Case(env.import_(path), "column 'conversations' has a bad shape at row index 0")


@case()
def import_random_parquet(env: Env) -> Case:
    path = env.file("random.parquet", os.urandom(512))
    return Case(env.import_(path), "cannot read it as Parquet")


@case()
def import_a_folder(env: Env) -> Case:
    folder = env.folder("a-folder.jsonl")
    return Case(env.import_(folder), "is a folder, not a file")


@case()
def import_file_with_hub_options(env: Env) -> Case:
    path = env.file("good2.jsonl", json.dumps({"instruction": "Q", "response": "A"}) + "\n")
    return Case(env.import_(path, "--split", "test"), "apply to Hub datasets, not to a file")


@case()
def import_into_a_generated_build(env: Env) -> Case:
    path = env.file("good2.jsonl", json.dumps({"instruction": "Q", "response": "A"}) + "\n")
    args = ["import", str(path), "--out", str(env.build)]
    return Case(args, "holds a build of recipe 'magpie', not this import")


@case()
def import_out_is_a_file(env: Env) -> Case:
    work = env.folder("work", "out.txt")
    path = env.file("good2.jsonl", json.dumps({"instruction": "Q", "response": "A"}) + "\n")
    return Case(
        ["import", str(path), "--out", str(work / "out.txt")], "is a file, not a folder", [work]
    )


# --- seeded recipes (lamini, instruct-synth) ----------------------------------------------


@case()
def lamini_empty_seed_file(env: Env) -> Case:
    seeds = env.file("seeds.txt", "\n  \n")
    config = f'recipe = "lamini"\n[seeds]\nsource = "{seeds}"\n' + env.engine()
    return Case(env.generate(config), "seeds.txt: holds no seed instructions")


@case()
def lamini_missing_seed_file(env: Env) -> Case:
    config = f'recipe = "lamini"\n[seeds]\nsource = "{env.tmp / "gone.jsonl"}"\n' + env.engine()
    return Case(env.generate(config), "gone.jsonl: no such file")


@case()
def instruct_synth_corpus_without_text_column(env: Env) -> Case:
    corpus = env.file("corpus.jsonl", json.dumps({"body": "a text"}) + "\n")
    config = f'recipe = "instruct-synth"\n[corpus]\nsource = "{corpus}"\n' + env.engine()
    return Case(env.generate(config), "has no column any of text")


@case()
def instruct_synth_more_rows_than_texts(env: Env) -> Case:
    config = 'recipe = "instruct-synth"\nnum_rows = 50\n' + env.engine()
    return Case(env.generate(config), "num_rows = 50, but the corpus gives 8 texts")


@case()
def instruct_synth_pieces_larger_than_the_context(env: Env) -> Case:
    config = 'recipe = "instruct-synth"\nmax_text_words = 9000\n' + env.engine()
    return Case(env.generate(config), "max_text_words (9000) does not fit the context")


# --- Hub ids and tags ---------------------------------------------------------------------


@case()
def push_repo_without_slash(env: Env) -> Case:
    return Case(["push", str(env.build), "--repo", "no-slash"], "no-slash: not a repository id")


@case()
def push_repo_with_two_slashes(env: Env) -> Case:
    return Case(["push", str(env.build), "--repo", "a/b/c"], "a/b/c: not a repository id")


@case()
def push_without_token(env: Env) -> Case:
    args = ["push", str(env.build), "--repo", "alice/data"]
    return Case(args, "alice/data: no Hugging Face token found")


@case()
def push_invalid_tag(env: Env) -> Case:
    args = ["push", str(env.build), "--repo", "alice/data", "--tag", "v1 final"]
    return Case(args, "v1 final")


@case()
def push_local_repo_without_slash(env: Env) -> Case:
    args = ["push", str(env.build), "--repo", "no-slash", "--local", str(env.tmp / "tree")]
    return Case(args, "no-slash: not a repository id")


@case()
def push_local_invalid_tag(env: Env) -> Case:
    tree = env.tmp / "tree"
    args = [
        "push",
        str(env.build),
        "--repo",
        "alice/data",
        "--tag",
        "v1 final",
        "--local",
        str(tree),
    ]
    return Case(args, "v1 final")


@case()
def push_hub_unreachable(env: Env) -> Case:
    import huggingface_hub.constants

    env.mp.setenv("HF_TOKEN", "hf_alice_test")
    env.mp.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")
    return Case(["push", str(env.build), "--repo", "alice/data"], "cannot reach the Hub")


# --- Argilla ------------------------------------------------------------------------------


def no_argilla(env: Env) -> None:
    env.mp.delenv("ARGILLA_API_URL", raising=False)
    env.mp.delenv("ARGILLA_API_KEY", raising=False)


def closed_argilla(env: Env) -> str:
    url = f"http://127.0.0.1:{free_port()}"
    env.mp.setenv("ARGILLA_API_URL", url)
    env.mp.setenv("ARGILLA_API_KEY", "owner.apikey")
    return url


@case()
def review_push_without_server(env: Env) -> Case:
    no_argilla(env)
    args = ["review", "push", str(env.build), "--dataset", "d"]
    return Case(args, "no Argilla server configured")


@case()
def review_push_url_without_key(env: Env) -> Case:
    no_argilla(env)
    env.mp.setenv("ARGILLA_API_URL", f"http://127.0.0.1:{free_port()}")
    args = ["review", "push", str(env.build), "--dataset", "d"]
    return Case(args, "no API key for the Argilla server at http://127.0.0.1:")


@case()
def review_push_closed_port(env: Env) -> Case:
    url = closed_argilla(env)
    args = ["review", "push", str(env.build), "--dataset", "d"]
    return Case(args, f"cannot reach the Argilla server at {url}")


@case()
def review_pull_closed_port(env: Env) -> Case:
    url = closed_argilla(env)
    args = ["review", "pull", str(env.build), "--dataset", "d"]
    return Case(args, f"cannot reach the Argilla server at {url}")


@case()
def review_push_stratify_by_unknown_column(env: Env) -> Case:
    closed_argilla(env)
    args = ["review", "push", str(env.build), "--dataset", "d", "--sample", "2"]
    return Case([*args, "--stratify-by", "mood"], "no column 'mood' to stratify by")


@case()
def review_push_non_build(env: Env) -> Case:
    closed_argilla(env)
    folder = env.folder("notes", "notes.txt")
    args = ["review", "push", str(folder), "--dataset", "d"]
    return Case(args, "not a build folder (no manifest.json)", [folder])


# --- the test -----------------------------------------------------------------------------


def run_cli(cli, args: list[str]) -> CliResult:  # type: ignore[no-untyped-def]
    """The `cli` fixture, with an escaping exception shown as the console script would."""
    try:
        result: CliResult = cli(*args)
    except Exception:
        return CliResult(1, "", traceback.format_exc())
    return result


@pytest.mark.parametrize("setup", CASES)
def test_bad_input_fails_with_one_message_a_hint_and_no_change(  # type: ignore[no-untyped-def]
    setup: Setup, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(tmp_path, monkeypatch)
    bad = setup(env)
    watch = bad.watch or env.made or [env.build]
    before = [tree_digest(folder) for folder in watch]
    result = run_cli(cli, bad.args)
    assert "Traceback" not in result.stderr, result.stderr.strip().splitlines()[-1]
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert "Error:" in result.stderr and bad.expect in result.stderr, result.stderr
    assert "Hint:" in result.stderr, result.stderr
    assert [tree_digest(folder) for folder in watch] == before, "the data changed"


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["generate", "c.toml", "-n", "abc"], id="num-rows-not-a-number"),
        pytest.param(["review", "push", "b", "--dataset", "d", "--sample", "0"], id="sample-zero"),
        pytest.param(["curate", "c.toml", "--bogus"], id="unknown-option"),
        pytest.param(["templates", "show"], id="missing-argument"),
        pytest.param(["push", "b"], id="missing-repo"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(cli, tmp_path: Path, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Typer's own validation: exit 2 and its usage message (not counted in the corpus)."""
    result = run_cli(cli, [str(tmp_path / a) if a in ("c.toml", "b") else a for a in args])
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Usage:" in result.stderr and "Error:" in result.stderr
