"""The Ray backend on a real local cluster (scripts/ray-cluster.sh: a head and 2 workers):
the same rows as the local backend, resume after `kill -9` of the driver, clear refusals."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import free_port, write_config

ROOT = Path(__file__).parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.ray]

CONFIG = """
recipe = "magpie"
num_rows = {rows}
seed = 11
batch_size = 2
{extra}
[engine]
model = "embedded:smollm2"
[instruction]
max_new_tokens = 24
[response]
max_new_tokens = 24
"""


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # the dev install has it: a failure, no skip
        pytest.fail("needs the ray extra: pip install 'magpie-hub[ray]'")
    env = {
        **os.environ,
        "MAGPIE_HUB_RAY_HOME": str(tmp_path_factory.mktemp("ray")),
        "MAGPIE_HUB_RAY_PORT": str(free_port()),
    }
    script = str(ROOT / "scripts" / "ray-cluster.sh")
    started = subprocess.run(
        ["bash", script, "start"], env=env, capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stderr
    address = started.stdout.strip().removeprefix("export MAGPIE_HUB_RAY_ADDRESS=")
    try:
        yield address
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=120)


def generate(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config), "--out", str(out)]
    return subprocess.run([*cmd, "--json", *extra], capture_output=True, text=True, timeout=900)


def rows(build: Path) -> list[dict]:
    table = pq.read_table(build / "data" / "train-00000-of-00001.parquet")
    return table.select(["uuid", "instruction", "response"]).to_pylist()


def committed(build: Path) -> dict[str, bytes]:
    """Every committed chunk file of a build, by name, with its bytes."""
    chunks = build / ".magpie" / "chunks"
    return {p.name: p.read_bytes() for p in sorted(chunks.glob("chunk-*"))}


def python(check: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The stdout lines of `python -c check args...`, which must exit 0."""
    cmd = [sys.executable, "-c", check, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


@pytest.mark.embedded
def test_a_ray_build_equals_the_local_build(
    ray_cluster: str, embedded_model: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", CONFIG.format(rows=8, extra=""))
    local = generate(config, tmp_path / "local")
    assert local.returncode == 0, local.stderr
    on_ray = write_config(
        tmp_path / "ray.toml",
        CONFIG.format(rows=8, extra="[execution]\nreplicas = {generate = 1}"),
    )
    remote = generate(on_ray, tmp_path / "ray", "--ray", ray_cluster)
    assert remote.returncode == 0, remote.stderr
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")
    manifests = [json.loads((tmp_path / b / "manifest.json").read_text()) for b in ("local", "ray")]
    assert manifests[0]["counts"] == manifests[1]["counts"]
    assert manifests[0]["fingerprint"] == manifests[1]["fingerprint"]
    assert manifests[1]["config"]["execution"]["backend"] == "ray"


@pytest.mark.embedded
def test_publish_on_ray_generates_and_curates_there(
    ray_cluster: str, embedded_model: Path, tmp_path: Path
) -> None:
    extra = '[curate]\ntaggers = ["language"]\n'
    config = write_config(tmp_path / "c.toml", CONFIG.format(rows=8, extra=extra))
    out, tree = tmp_path / "build", tmp_path / "tree"
    cmd = [sys.executable, "-m", "magpie_hub", "publish", str(config), "--repo", "a/b"]
    cmd += ["--tag", "v1", "--out", str(out), "--local", str(tree), "--ray", ray_cluster]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tree / "manifest.json").read_text())
    assert manifest["config"]["execution"]["backend"] == "ray"
    assert manifest["curate"]["execution"]["backend"] == "ray"
    assert manifest["counts"]["generated"] > 0
    assert manifest["curate"]["taggers"]["language"]["tagged"] == manifest["counts"]["generated"]


@pytest.mark.embedded
def test_kill_9_of_the_driver_on_ray_loses_and_repeats_no_batch(
    ray_cluster: str, embedded_model: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", CONFIG.format(rows=16, extra=""))
    out = tmp_path / "build"
    cmd = [sys.executable, "-m", "magpie_hub", "generate", str(config), "--out", str(out)]
    driver = subprocess.Popen(
        [*cmd, "-q", "--ray", ray_cluster], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(list((out / ".magpie/chunks").glob("*.json"))) < 2:
        assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
        time.sleep(0.1)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    before = committed(out)
    assert before and len(before) < 16
    again = generate(config, out, "--ray", ray_cluster)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["resumed"] and summary["generated"] + summary["dropped"] == 16
    after = committed(out)
    assert all(after.get(name) == data for name, data in before.items())  # kept as they were
    written = [
        i
        for p in (out / ".magpie/chunks").glob("*.json")
        for i in json.loads(p.read_text())["written"]
    ]
    assert len(written) == len(set(written))  # no row committed twice
    uuids = [r["uuid"] for r in rows(out)]
    assert len(uuids) == len(set(uuids)) == summary["generated"]


def test_an_unreachable_address_is_one_clear_error(tmp_path: Path, ray_cluster: str) -> None:
    config = write_config(tmp_path / "c.toml", CONFIG.format(rows=2, extra=""))
    out = tmp_path / "build"
    result = generate(config, out, "--ray", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "no Ray cluster answers at" in result.stderr and "Hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


TOKEN_HEAD = """
import ray, sys
ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # until the test closes stdin
"""


def test_a_cluster_that_asks_for_a_token_is_one_clear_error(tmp_path: Path) -> None:
    token = secrets.token_hex(16)  # made here, never written to a file
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    head = subprocess.Popen(
        [sys.executable, "-c", TOKEN_HEAD], env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert head.stdin is not None and head.stdout is not None
    try:
        address = head.stdout.readline().strip()
        assert address, "the token-auth Ray head did not start"
        config = write_config(tmp_path / "c.toml", CONFIG.format(rows=2, extra=""))
        out = tmp_path / "build"
        result = generate(config, out, "--ray", address)
    finally:
        head.stdin.close()
        head.wait(timeout=120)
    assert result.returncode == 1, result.stderr
    assert "requires an authentication token" in result.stderr and "RAY_AUTH_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr and token not in result.stderr + result.stdout
    assert not out.exists()


def test_ray_without_the_extra_names_the_install_command(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", CONFIG.format(rows=2, extra=""))
    out = tmp_path / "build"
    hide_ray = "import sys; sys.modules['ray'] = None; from magpie_hub.cli.main import main; main()"
    cmd = [sys.executable, "-c", hide_ray, "generate", str(config), "--out", str(out), "--ray"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "pip install 'magpie-hub[ray]'" in result.stderr
    assert not out.exists()


def test_a_node_without_the_model_file_or_package_is_named(ray_cluster: str) -> None:
    check = (
        "import sys, ray\n"
        "from magpie_hub.execution import check_nodes\n"
        "from magpie_hub.errors import EngineError\n"
        f"ray.init(address={ray_cluster!r}, logging_level='ERROR', log_to_driver=False)\n"
        "for paths, modules in (([sys.argv[1]], []), ([], ['no_such_engine_lib'])):\n"
        "    try:\n"
        "        check_nodes(paths, modules)\n"
        "    except EngineError as exc:\n"
        "        print(exc)\n"
    )
    missing = "/nonexistent/model.gguf"
    lines = python(check, missing)
    assert len(lines) == 2
    assert "Ray node" in lines[0] and f"lacks file {missing}" in lines[0]
    assert "lacks Python package no_such_engine_lib" in lines[1]


def test_a_node_s_pass_is_remembered_by_the_cluster_for_the_same_check(
    ray_cluster: str, tmp_path: Path
) -> None:
    """A check costs a fresh worker process per node; a later run asking the same of the
    same nodes is not checked again, while another check is."""
    model = tmp_path / "m.gguf"
    model.write_text("gguf")
    check = (
        "import sys, ray\n"
        "from magpie_hub.execution import check_nodes\n"
        "from magpie_hub.errors import EngineError\n"
        f"ray.init(address={ray_cluster!r}, logging_level='ERROR', log_to_driver=False)\n"
        "for modules in sys.argv[2:] or [None]:\n"
        "    try:\n"
        "        check_nodes([sys.argv[1]], modules.split(',') if modules else [])\n"
        "        print('passed')\n"
        "    except EngineError as exc:\n"
        "        print(exc)\n"
    )
    assert python(check, str(model)) == ["passed"]
    model.unlink()  # what a later run would find, were it checked again
    lines = python(check, str(model), "", "json")
    assert lines[0] == "passed"
    assert "Ray node" in lines[1] and f"lacks file {model}" in lines[1]


def test_queues_share_one_actor_carry_bytes_and_step_actors_defer_argilla(
    ray_cluster: str,
) -> None:
    """A run's queues live in one actor and hold pickled bytes (a queue actor of its own
    each imported distilabel to unpickle its first batch); a step actor has the run's
    variables before it unpickles its step, and argilla deferred, as the CLI does."""
    check = (
        "import queue, ray, sys\n"
        "from magpie_hub.config import ExecutionConfig\n"
        "from magpie_hub.execution import connect_ray\n"
        f"connect_ray(ExecutionConfig(backend='ray', address={ray_cluster!r}), model_paths=[])\n"
        "from distilabel.pipeline.batch import _Batch\n"
        "from magpie_hub.ray_pipeline import QuickQueuesRayPipeline\n"
        "make = QuickQueuesRayPipeline(name='t').QueueClass\n"
        "a, b = make(actor_options={'name': 'a'}), make(actor_options={'name': 'b'})\n"
        "print(a.hub == b.hub)\n"
        "a.put(_Batch(seq_no=3, step_name='s', last_batch=True, data=[[{'x': 1}]]))\n"
        "print(b.empty(), a.qsize())\n"
        "ok, held = ray.get(a.hub.get.remote('a', True, None))\n"
        "print(type(held).__name__)\n"
        "ray.get(a.hub.put.remote('a', held))\n"
        "batch = a.get(block=False)\n"
        "print(batch.seq_no, batch.data)\n"
        "for kw in ({'block': False}, {'timeout': 0.2}):\n"
        "    try:\n"
        "        a.get(**kw)\n"
        "    except queue.Empty:\n"
        "        print('empty')\n"
        "from magpie_hub.ray_actors import StepActor\n"
        "from ray import cloudpickle\n"
        "class Probe:\n"  # pickled by value, as a step wrapper is: nothing of ours imported
        "    def __getstate__(self):\n"
        "        return {'state': 1}\n"
        "    def __setstate__(self, state):\n"
        "        import os\n"
        "        self.seen = os.environ.get('MAGPIE_HUB_PROBE')\n"
        "    def run(self):\n"
        "        import distilabel.steps, sys\n"
        "        return f\"{self.seen} {type(sys.modules['argilla']).__name__}\"\n"
        "actor = ray.remote(StepActor).options(num_cpus=0).remote(\n"
        "    {'MAGPIE_HUB_PROBE': 'set'}, cloudpickle.dumps(Probe()), a,\n"
        "    {'name': 't', 'cache_id': 'c'})\n"
        "print(ray.get(actor.run.remote()))\n"
    )
    assert python(check) == [
        "True",
        "True 1",
        "bytes",
        "3 [[{'x': 1}]]",
        "empty",
        "empty",
        "set _StandIn",
    ]


def test_a_light_step_runs_in_the_queue_hub_with_the_run_s_variables_and_logs(
    ray_cluster: str,
) -> None:
    """Light steps (row source, writers) run as threads of the queue hub, not in a Ray
    worker process of their own each; they get the run's variables and log to the run's
    log queue as a step actor does."""
    check = (
        "import ray\n"
        "from ray import cloudpickle\n"
        "from magpie_hub.config import ExecutionConfig\n"
        "from magpie_hub.execution import connect_ray\n"
        f"connect_ray(ExecutionConfig(backend='ray', address={ray_cluster!r}), model_paths=[])\n"
        "from magpie_hub.ray_pipeline import QuickQueuesRayPipeline\n"
        "make = QuickQueuesRayPipeline(name='t').QueueClass\n"
        "logs, out = make(actor_options={'name': 'logs'}), make(actor_options={'name': 'out'})\n"
        "class Light:\n"
        "    def run(self):\n"
        "        import logging, os\n"
        "        logging.getLogger('probe').warning('light step says hello')\n"
        "        here = ray.get_runtime_context().get_actor_id()\n"
        "        out.put((here, os.environ.get('MAGPIE_HUB_PROBE')))\n"
        "ids = {'name': 't', 'cache_id': 'c'}\n"
        "env = {'MAGPIE_HUB_PROBE': 'set'}\n"
        "ray.get(out.hub.host_step.remote(env, cloudpickle.dumps(Light()), logs, ids))\n"
        "here, seen = out.get(timeout=60)\n"
        "print(here == out.hub._actor_id.hex(), seen)\n"
        "print(logs.get(timeout=60).getMessage())\n"
    )
    assert python(check) == ["True set", "light step says hello"]


def test_a_node_whose_workers_die_at_start_is_named(ray_cluster: str) -> None:
    check = (
        "import ray\n"
        "from magpie_hub.execution import check_nodes\n"
        "from magpie_hub.errors import EngineError\n"
        f"ray.init(address={ray_cluster!r}, logging_level='ERROR', log_to_driver=False,\n"
        "         runtime_env={'worker_process_setup_hook': 'no_such_module.setup'})\n"
        "try:\n"
        "    check_nodes([], [])\n"
        "except EngineError as exc:\n"
        "    print(exc)\n"
    )
    lines = python(check)
    assert any(re.search(r"Ray node [\d.]+: its workers die as they start", x) for x in lines)


def test_the_ray_pipeline_s_signature_leaves_datasets_unloaded() -> None:
    """distilabel's `RayPipeline.dump` runs the `distilabel.pipeline` package `__init__`,
    which imports `datasets` and pandas on the driver before any actor starts; ours types
    the dump the same way without it."""
    check = (
        "import json, sys\n"
        "from magpie_hub.ray_pipeline import QuickQueuesRayPipeline\n"
        "from distilabel.pipeline.ray import RayPipeline\n"
        "pipeline = QuickQueuesRayPipeline(name='t')\n"
        "signature, ours = pipeline.signature, pipeline.dump()\n"
        "loaded = [m for m in ('datasets', 'pandas') if m in sys.modules]\n"
        "print(json.dumps({'loaded': loaded, 'same': ours == RayPipeline.dump(pipeline)}))\n"
    )
    assert json.loads(python(check)[-1]) == {"loaded": [], "same": True}


def test_leaving_the_cluster_skips_ray_s_exit_sleep(ray_cluster: str) -> None:
    """Ray's own exit hook sleeps 0.5 s for driver logs, which we do not print; the
    connection is closed before it runs."""
    check = (
        "import atexit, time\n"
        "import ray._private.worker as worker\n"
        "from magpie_hub.config import ExecutionConfig\n"
        "from magpie_hub.execution import connect_ray\n"
        "class Clock:\n"
        "    def __getattr__(self, name):\n"
        "        return getattr(time, name)\n"
        "    def sleep(self, seconds):\n"
        "        print('slept', seconds, flush=True)\n"
        "worker.time = Clock()\n"
        f"connect_ray(ExecutionConfig(backend='ray', address={ray_cluster!r}), model_paths=[])\n"
        "print('connected', flush=True)\n"
    )
    assert python(check) == ["connected"]


def test_nodes_are_checked_on_a_cluster_but_not_on_a_runtime_started_here(
    ray_cluster: str,
) -> None:
    """A local runtime runs this process's Python on this machine: its check would only
    start a worker per node (about 1 s on 2 cores)."""
    check = (
        "import json, os, sys, ray\n"
        "from magpie_hub import execution\n"
        "from magpie_hub.config import ExecutionConfig\n"
        "checked = []\n"
        "execution.check_nodes = lambda paths, modules: checked.append(paths)\n"
        "address = sys.argv[1] or None\n"
        "execution.connect_ray(ExecutionConfig(backend='ray', address=address), "
        "model_paths=['m.gguf'])\n"
        "print(json.dumps(checked))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    seen = {
        address: json.loads(python(check, address, env=env)[-1]) for address in (ray_cluster, "")
    }
    assert seen == {ray_cluster: [["m.gguf"]], "": []}
