"""Build a tiny random Llama (ChatML template, byte-level BPE tokenizer) in seconds."""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a tiny test model.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "How do I bake bread at home? Mix flour, water, salt and yeast, then knead and bake.",
    "What is the capital of France? The capital of France is Paris.",
    "Explain photosynthesis in simple words. Plants turn light, water and air into sugar.",
    "Write a short poem about the sea. The sea is wide, the sea is deep, it sings me to sleep.",
    "Can you help me plan a trip to Rome? Visit the Colosseum, the Forum and eat pasta.",
] * 20


def build_tiny_model(folder: Path | str, seed: int = 0, style: str = "chat") -> Path:
    """Write config, weights, tokenizer and chat template of a random tiny Llama to `folder`.

    style "chat" teaches it ChatML turns (an instruct model); "urial" teaches it URIAL's
    plain-text `# Query:` / `# Answer:` format instead (a base model prompted URIAL-style).
    """
    folder = Path(folder)
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.chat_template = CHATML
    fast.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=1024,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    _teach_turns(model, fast, style)
    model.save_pretrained(folder)
    # A chat template in tokenizer_config.json too, as most published models have it.
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.setdefault("chat_template", CHATML)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return folder


def build_tiny_reward_model(folder: Path | str, seed: int = 0) -> Path:
    """A random tiny Llama sequence classifier (one label): a reward model's shape."""
    folder = Path(folder)
    chat = build_tiny_model(folder / "lm", seed)
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(chat)
    config = LlamaConfig.from_pretrained(chat)
    config.num_labels = 1
    torch.manual_seed(seed)
    LlamaForSequenceClassification(config).save_pretrained(folder / "rm")
    tok.save_pretrained(folder / "rm")
    return folder / "rm"


def _teach_turns(model: object, tokenizer: object, style: str = "chat", steps: int = 120) -> None:
    """A few seconds of training so the model ends its turns like a chat model (ChatML) or
    answers in URIAL's plain-text format."""
    import torch

    texts = []
    for line in CORPUS[:5]:
        question, _, answer = line.partition("? ")
        if style == "urial":
            texts.append(f"# Query:\n```{question}?```\n\n# Answer:\n```\n{answer}\n```\n\n# Query")
            continue
        texts.append(
            tokenizer.apply_chat_template(  # type: ignore[attr-defined]
                [
                    {"role": "user", "content": question + "?"},
                    {"role": "assistant", "content": answer},
                ],
                tokenize=False,
            )
        )
    batch = tokenizer(texts, return_tensors="pt", padding=True)  # type: ignore[operator]
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)  # type: ignore[attr-defined]
    model.train()  # type: ignore[attr-defined]
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss  # type: ignore[operator]
        loss.backward()
        optim.step()
        optim.zero_grad()
    model.eval()  # type: ignore[attr-defined]
