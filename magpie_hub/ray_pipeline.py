"""distilabel's `RayPipeline`, placed for our steps (imported on the Ray backend only).

Steps without an engine (row source, writers, taggers) are pinned to this machine, where
the build folder is, and hold no CPU slot: Ray gives an actor with a custom resource one
CPU for its lifetime, and three such steps on two CPUs never all start.

distilabel makes every queue (log, output, load, one input per step) a Ray actor. Each
such actor unpickled what it carried, so the first batch put on each queue made that bare
Ray worker import distilabel (1.0 to 2.3 s a queue on 2 cores, on the path of the first
batch through every step). Our queues carry pickled bytes instead, ask for no CPU (Ray's
default of one CPU to be scheduled made them wait behind the engine steps) and live on the
driver's node, which reads and writes most of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import ray
from distilabel.pipeline.ray import RayPipeline
from ray import cloudpickle
from ray.util.queue import Queue


class OpaqueQueue(Queue):
    """A Ray queue whose actor holds bytes, so it never imports what its items are made of."""

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(cloudpickle.dumps(item), block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return cloudpickle.loads(super().get(block, timeout))


class QuickQueuesRayPipeline(RayPipeline):
    """`RayPipeline` whose queues are `OpaqueQueue`s placed on the driver's node."""

    @property
    def QueueClass(self) -> Callable[..., Any]:
        here = driver_node()

        def placed(maxsize: int = 0, actor_options: dict[str, Any] | None = None) -> Queue:
            options = {"num_cpus": 0, "resources": here, **(actor_options or {})}
            return OpaqueQueue(maxsize, actor_options=options)

        return placed


def driver_node() -> dict[str, float]:
    """The Ray resource that places an actor on this machine (a sliver of it: any number fit)."""
    return {f"node:{ray.util.get_node_ip_address()}": 0.001}


def ray_pipeline(pipeline: Any, engine_steps: set[str]) -> QuickQueuesRayPipeline:
    """`pipeline` as a `QuickQueuesRayPipeline` (what distilabel's `Pipeline.ray()` does),
    the steps not in `engine_steps` pinned to this machine."""
    for name in pipeline.dag:
        step = pipeline.dag.get_step(name)["step"]
        if name not in engine_steps:
            step.resources.resources = driver_node()
            step.resources.cpus = 0  # PositiveInt in distilabel, not validated on assignment
    placed = QuickQueuesRayPipeline(
        name=pipeline.name,
        description=pipeline.description,
        cache_dir=pipeline._cache_dir,
        enable_metadata=pipeline._enable_metadata,
        requirements=pipeline.requirements,
    )
    placed.dag = pipeline.dag
    return placed


# distilabel's StepResources types its resources and GPUs as ints; Ray takes fractions.
warnings.filterwarnings(
    "ignore", message=r"Pydantic serializer warnings:[\s\S]*field_name='(resources|gpus)'"
)
