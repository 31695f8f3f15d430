"""A `magpie` build of any size whose generation has just finished, written without a model.

`write_build(root, rows)` writes, under `root`:

- `model/`: a transformers model folder with only a chat template (ChatML) and a config;
  the engine reads those to plan a build and loads weights only to generate rows, which
  never happens here;
- `magpie-hub.toml`: recipe `magpie`, the `@library` system-prompt mix, both training
  views;
- `build/`: prepared by `plan_build` (as `generate` prepares it), then every batch
  committed through the real sink, `WriteChunks.process`, as the pipeline would hand it
  over (about 3% of the rows dropped with check_instruction's reasons). Only the fsync of
  each file is skipped.

`magpie-hub generate` on that config and folder has no row left to generate: it does
what the end of a real run does (consolidate the chunks into shards, write the views and
the manifest). Shared by `benchmarks/bench_scale.py` and `tests/test_scale.py`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CONFIG = """recipe = "magpie"
num_rows = {rows}
seed = 42
batch_size = {batch_size}
system_prompt = "@library"
views = ["sharegpt", "alpaca"]

[engine]
name = "transformers"
model = "{model}"
"""
VERBS = ["Write", "Explain", "List", "Describe", "Summarize", "How do I", "Can you", "What is"]
DROPS = ["truncated", "empty", "role_marker"]
DROP_SHARE = 0.03


class _Text:
    """Random words at random lengths, cut from one long random text (fast: a slice a row)."""

    def __init__(self, rng: random.Random, words: int = 2_000_000) -> None:
        letters = "etaoinshrdlucmfwypvbgkjqxz"
        weights = [26 - i for i in range(26)]
        vocab = ["".join(rng.choices(letters, weights, k=rng.randint(2, 9))) for _ in range(3000)]
        self.text = " ".join(rng.choices(vocab, k=words))
        self.starts = [0] + [i + 1 for i, c in enumerate(self.text) if c == " "]
        self.rng = rng

    def words(self, low: int, high: int) -> str:
        count = self.rng.randint(low, high)
        first = self.rng.randrange(len(self.starts) - count - 1)
        return self.text[self.starts[first] : self.starts[first + count] - 1]


def model_folder(path: Path) -> Path:
    """A transformers model folder that plans a build but could not generate one."""
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = {"chat_template": CHATML, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    config = {"_name_or_path": "synthetic/no-weights", "architectures": ["LlamaForCausalLM"]}
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return path


def _batches(plan: Any, rows: int, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows as the response step hands them to the sink, one batch at a time."""
    from magpie_hub.prompts.system_prompts import choose, expand
    from magpie_hub.steps import row_seed, row_uuid

    config, fmt = plan.config, plan.format
    options = list(expand(config.system_prompt))
    pre_query = {key: fmt.next_user_prompt([], prompt) for key, prompt, _ in options}
    rng = random.Random(config.seed)
    text = _Text(rng, min(2_000_000, 1_000 + 200 * rows))
    fingerprint = config.fingerprint()
    for start in range(0, rows, batch_size):
        batch = []
        for i in range(start, min(start + batch_size, rows)):
            if rng.random() < DROP_SHARE:
                batch.append({"row_index": i, "dropped_reason": rng.choice(DROPS)})
                continue
            key, prompt = choose(options, row_seed(config.seed, i, "system"))
            verb = rng.choice(VERBS)
            instruction = f"{verb} {text.words(6, 40)}?"
            response = text.words(30, 260) + "."
            batch.append(
                {
                    "row_index": i,
                    "dropped_reason": None,
                    "uuid": row_uuid(fingerprint, i),
                    "instruction": instruction,
                    "response": response,
                    "conversation": [
                        {"role": "user", "content": instruction},
                        {"role": "assistant", "content": response},
                    ],
                    "system_prompt": prompt,
                    "system_prompt_key": key,
                    "model": plan.model.model_id,
                    "pre_query_template": pre_query[key],
                }
            )
        yield batch


def write_build(root: Path, rows: int, *, batch_size: int = 64) -> tuple[Path, Path]:
    """Write the model folder, config and finished-generation build under `root`; returns
    (config, build)."""
    from distilabel.pipeline.local import Pipeline
    from magpie_hub_plugins.recipe_magpie import COLUMNS

    import magpie_hub.steps as steps
    from magpie_hub.config import load_config
    from magpie_hub.generate.run import plan_build
    from magpie_hub.plugins import get_registry

    root.mkdir(parents=True, exist_ok=True)
    model = model_folder(root / "model")
    config_path = root / "magpie-hub.toml"
    text = CONFIG.format(rows=rows, batch_size=batch_size, model=model)
    config_path.write_text(text, encoding="utf-8")
    build = root / "build"
    plan = plan_build(load_config(config_path, get_registry()), build)
    recipe = plan.recipe
    with Pipeline(name="synthetic-build"):  # a step outside a pipeline only warns
        sink = steps.WriteChunks(
            name="write",
            chunk_dir=str(plan.folder.chunks),
            columns=COLUMNS,
            constants={"gen_config": _gen_config(plan.config)},
            system_in_conversation=plan.config.include_system_prompt,
            row_types=recipe.features,
            input_batch_size=batch_size,
        )
    fsynced = steps.atomic_write
    steps.atomic_write = lambda path, write: write(path)  # the same bytes, no fsync
    try:
        for batch in _batches(plan, rows, batch_size):
            for _ in sink.process(batch):
                pass
    finally:
        steps.atomic_write = fsynced
    return config_path, build


def _gen_config(config: Any) -> dict[str, Any]:
    """What recipe `magpie` stores as every row's `gen_config`."""
    return {
        "seed": config.seed,
        "instruction": config.instruction.model_dump(),
        "response": config.response.model_dump(),
    }


CURATE = """
[curate]
taggers = ["language"]
batch_size = 256

[filter]
rules = [
  {{column = "language", op = "==", value = "EN"}},
  {{column = "instruction", op = "not_endswith", value = ":"}},
]
top_n = {top_n}
shuffle_seed = 7
"""
LANGUAGES = ["EN"] * 8 + ["DE", "ZH"]


def write_tags(config_path: Path, build: Path, *, untagged: float = 0.02) -> Path:
    """A curate config beside `config_path` (language tags; a filter with a rule, top_n and
    a shuffle) and the language tags of every row of the consolidated `build` but the last
    `untagged` share, committed as curate's sink commits them (a chunk per 64 rows, fsync
    skipped); `magpie-hub curate` then tags the rest with lingua. Returns the config."""
    import pyarrow.parquet as pq

    import magpie_hub.curate.store as store
    from magpie_hub.build import BuildFolder
    from magpie_hub.curate.config import load_curation
    from magpie_hub.curate.kit import ERROR, done_key
    from magpie_hub.curate.run import plan_curate

    shards = BuildFolder(build).shards()
    uuids = [u for p in shards for u in pq.read_table(p, columns=["uuid"]).column(0).to_pylist()]
    curate_path = config_path.with_name("curate.toml")
    top_n = max(1, len(uuids) * 3 // 10)
    curate_path.write_text(config_path.read_text() + CURATE.format(top_n=top_n))
    cfg = load_curation(curate_path)
    plan = plan_curate(build, cfg.curate, cfg.filter, seed=cfg.seed)
    folder, tagger = plan.stores["language"], plan.taggers[0]
    folder.mkdir(parents=True, exist_ok=True)
    schema = json.dumps(store.store_features(tagger.columns).to_dict())
    rng = random.Random(7)
    tagged = uuids[: round(len(uuids) * (1 - untagged))]
    fsynced = store.atomic_write
    store.atomic_write = lambda path, write: write(path)  # the same bytes, no fsync
    try:
        for start in range(0, len(tagged), 64):
            rows = [
                {"uuid": u, done_key("language"): {"language": rng.choice(LANGUAGES), ERROR: None}}
                for u in tagged[start : start + 64]
            ]
            store.commit_chunk(folder, schema, rows, "language")
    finally:
        store.atomic_write = fsynced
    return curate_path
