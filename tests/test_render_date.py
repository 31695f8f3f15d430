"""Templates that put today's date in the prompt (Llama 3.2/3.3's `strftime_now`) render one
frozen day per build: the config's, else the day the build started, kept on resume."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from conftest import tiny_config, write_config

from magpie_hub.config import load_config
from magpie_hub.errors import ConfigValidationError
from magpie_hub.generate.tasks import _RawTextTask
from magpie_hub.plugins import get_registry
from magpie_hub.prompts.chat_template import ChatTemplate
from magpie_hub.prompts.templates import derive
from magpie_hub.steps import prompt_fields

DATED = (
    "{{ '<|im_start|>system\\nToday Date: ' + strftime_now('%d %b %Y') + '<|im_end|>\\n' }}"
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_a_frozen_day_renders_whatever_the_clock_says() -> None:
    today = date.today().strftime("%d %b %Y")
    assert f"Today Date: {today}" in derive(ChatTemplate(DATED)).pre_query
    frozen = ChatTemplate(DATED).on("2026-01-02")
    assert frozen.uses_date and not ChatTemplate("{{ messages }}").uses_date
    fmt = derive(frozen)
    assert "Today Date: 02 Jan 2026<|im_end|>" in fmt.pre_query
    # the steps rebuild the template in distilabel's workers from plain fields: same day
    fields = prompt_fields(fmt)
    assert fields["render_date"] == "2026-01-02"
    rebuilt = _RawTextTask.prompt_format(SimpleNamespace(**fields))  # type: ignore[arg-type]
    assert rebuilt.next_user_prompt([]) == fmt.next_user_prompt([])


def test_a_render_date_that_is_not_a_day_is_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "c.toml", '[engine]\nmodel = "embedded:smollm2"\nrender_date = "2026-13-01"\n'
    )
    with pytest.raises(ConfigValidationError) as caught:
        load_config(path, get_registry())
    assert caught.value.field == "engine.render_date"


def _dated_config(path: Path, model: Path, num_rows: int, render_date: str | None) -> Path:
    text = tiny_config(model, num_rows=num_rows, batch_size=2)
    line = f'model = "{model}"\n'
    extra = f"chat_template = '''{DATED}'''\n"
    if render_date:
        extra += f'render_date = "{render_date}"\n'
    return write_config(path, text.replace(line, line + extra))


def _rows(build: Path) -> list[dict]:
    return [
        r for f in sorted((build / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]


def _prompts(log: Path) -> list[str]:
    """Every prompt the engine was sent (kept rows or not)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line)["prompt"] for line in lines]


def _generate(cli, model: Path, tmp_path: Path, monkeypatch, day: str | None):  # type: ignore[no-untyped-def]
    """Generate 2 rows with the dated template; (config, build, the prompt log)."""
    log = tmp_path / "prompts.jsonl"
    monkeypatch.setenv("MAGPIE_HUB_LOG_PROMPTS", str(log))
    config = _dated_config(tmp_path / "c.toml", model, 2, day)
    build = tmp_path / "build"
    assert cli("generate", str(config), "--out", str(build), "-q").exit_code == 0
    return config, build, log


@pytest.mark.slow
def test_a_build_keeps_its_day_on_resume_and_records_it(  # type: ignore[no-untyped-def]
    cli, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, build, log = _generate(cli, tiny_model, tmp_path, monkeypatch, None)
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["render_date"] == date.today().isoformat()
    today = date.today().strftime("%d %b %Y")
    first = _prompts(log)
    assert first and all(f"Today Date: {today}<" in p for p in first)
    assert all(f"Today Date: {today}<" in r["pre_query_template"] for r in _rows(build))

    # the build "started" on another day: growing it (as a resume does) keeps that day
    manifest["render_date"] = "2020-02-02"
    (build / "manifest.json").write_text(json.dumps(manifest))
    log.unlink()
    result = cli("generate", str(config), "--out", str(build), "-q", "-n", "4")
    assert result.exit_code == 0, result.stderr
    grown = _prompts(log)
    assert grown and all("Today Date: 02 Feb 2020<" in p for p in grown)
    assert json.loads((build / "manifest.json").read_text())["render_date"] == "2020-02-02"

    card = cli("card", str(build))
    assert card.exit_code == 0 and "| chat template date | 2020-02-02" in card.stdout


@pytest.mark.slow
def test_the_configured_day_is_used(  # type: ignore[no-untyped-def]
    cli, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, build, log = _generate(cli, tiny_model, tmp_path, monkeypatch, "2021-03-04")
    assert json.loads((build / "manifest.json").read_text())["render_date"] == "2021-03-04"
    prompts = _prompts(log)
    assert prompts and all("Today Date: 04 Mar 2021<" in p for p in prompts)
