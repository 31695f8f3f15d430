"""`magpie-hub templates list|show`."""

from __future__ import annotations

import json
from pathlib import Path

from magpie_hub.prompts.templates import PRESETS

DATA = Path(__file__).parent / "data" / "chat_templates"
KEYS = {"pre_query_template", "user_to_assistant", "assistant_to_user", "stop", "preset"}


def test_list(cli) -> None:
    result = cli("templates", "list", "--json")
    assert result.exit_code == 0
    assert [p["preset"] for p in json.loads(result.stdout)] == list(PRESETS)
    assert "gemma2" in cli("templates", "list").stdout


def test_show_preset(cli) -> None:
    info = json.loads(cli("templates", "show", "llama3", "--json").stdout)
    assert set(info) >= KEYS
    assert info["preset"] == "llama3"
    assert info["pre_query_template"] == PRESETS["llama3"].pre_query


def test_show_tokenizer_config_and_folder(cli, tiny_model: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "tokenizer_config.json"
    cfg.write_text(
        json.dumps(
            {
                "chat_template": (DATA / "llama3.1.jinja").read_text(),
                "bos_token": "<|begin_of_text|>",
                "eos_token": "<|eot_id|>",
            }
        )
    )
    info = json.loads(cli("templates", "show", str(cfg), "--json").stdout)
    assert set(info) >= KEYS
    assert info["preset"] is None and "Cutting Knowledge Date" in info["pre_query_template"]
    assert "'llama3'" in info["note"]
    assert "<|eot_id|>" in info["stop"]
    none = json.loads(
        cli("templates", "show", str(cfg), "--template-system", "none", "--json").stdout
    )
    assert none["preset"] == "llama3"

    folder = json.loads(cli("templates", "show", str(tiny_model), "--json").stdout)
    assert folder["pre_query_template"].endswith("<|im_start|>user\n")


def test_show_reports_whitespace_differences(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "tokenizer_config.json"
    cfg.write_text(
        json.dumps(
            {
                "chat_template": (DATA / "mistral.jinja").read_text(),
                "bos_token": "<s>",
                "eos_token": "</s>",
            }
        )
    )
    info = json.loads(cli("templates", "show", str(cfg), "--json").stdout)
    assert info["pre_query_template"] == "<s>[INST] " and info["preset"] is None
    assert "'mistral' only by whitespace" in info["note"]
    # Gemma 2's shipped template renders Gemma 1.1's preset; the gemma2 preset adds a newline
    cfg.write_text(
        json.dumps(
            {
                "chat_template": (DATA / "gemma2.jinja").read_text(),
                "bos_token": "<bos>",
                "eos_token": "<eos>",
            }
        )
    )
    assert json.loads(cli("templates", "show", str(cfg), "--json").stdout)["preset"] == "gemma"


def test_show_gguf(cli, embedded_model: Path) -> None:
    info = json.loads(cli("templates", "show", str(embedded_model), "--json").stdout)
    assert info["pre_query_template"].startswith("<|im_start|>system\nYou are a helpful AI")


def test_show_bad_source(cli, tmp_path: Path) -> None:
    missing = cli("templates", "show", str(tmp_path / "nope"))
    assert missing.exit_code == 1 and "Hint:" in missing.stderr
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    result = cli("templates", "show", str(bad))
    assert result.exit_code == 1 and "not a tokenizer_config.json" in result.stderr
