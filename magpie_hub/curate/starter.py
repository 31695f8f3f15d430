"""The `[curate]` and `[filter]` sections `magpie-hub init --curate` appends to a config."""

STARTER = """
# --- Curation (`magpie-hub curate CONFIG --out BUILD`, and `publish` after generate) ---
# Tags every row with Magpie's columns, then [filter] makes the `filtered` view.
# The embedded SmolLM2-135M is a weak judge: fine for the plumbing, not for real labels;
# point [curate.judge] at a bigger model (e.g. an OpenAI-compatible server) for those.
[curate]
# quality, difficulty, category: asked of the judge; language: lingua (offline);
# near_dup: packaged all-MiniLM-L6-v2 embeddings + FAISS. Also available: safety
# (a Llama-Guard-style judge) and reward (needs curate.reward.model).
taggers = ["quality", "difficulty", "category", "language", "near_dup"]
judge_max_new_tokens = 192
batch_size = 8

[curate.judge]
name = "llamacpp"
model = "embedded:smollm2"

[curate.near_dup]
threshold = 0.05   # squared L2 of normalised embeddings (about cos >= 0.975)

[filter]
# preset = "magpie-300k"   # or magpie-notebook, magpie-mt, magpie-dpo (needs more taggers)
rules = [
    { column = "min_similar_uuid", op = "first_of_group" },   # one row per duplicate group
    { column = "instruction", op = "not_endswith", value = ":" },
]
"""
