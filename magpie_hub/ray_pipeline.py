"""distilabel's `RayPipeline`, placed for our steps (imported on the Ray backend only).

Steps without an engine (row source, writers, taggers) are pinned to this machine, where
the build folder is, and hold no CPU slot: Ray gives an actor with a custom resource one
CPU for its lifetime, and three such steps on two CPUs never all start.

distilabel makes every queue (log, output, load, one input per step) a Ray actor of its
own. Each such actor unpickled what it carried, so the first batch put on each queue made
that bare Ray worker import distilabel (1.0 to 2.3 s a queue on 2 cores, on the path of
the first batch through every step), and the seven worker processes started one after
another on the driver's node. Here all queues of a run live in one actor (`QueueHub`) on
the driver's node, asking for no CPU, and hold pickled bytes. Light steps (those of a
`LightStep` class: the row sources and writers) run as threads of that actor;
every other step runs in a `StepActor` of its own (`magpie_hub.ray_actors`).
"""

from __future__ import annotations

import functools
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import ray
from distilabel.pipeline.base import BasePipeline
from distilabel.pipeline.ray import RayPipeline
from distilabel.pipeline.step_wrapper import _StepWrapper
from ray import cloudpickle

from magpie_hub.execution import driver_node
from magpie_hub.ray_actors import HubQueue, QueueHub, StepActor
from magpie_hub.steps import LightStep


class QuickQueuesRayPipeline(RayPipeline):
    """`RayPipeline` whose queues are `HubQueue`s of one `QueueHub` on the driver's node and
    whose steps run in `StepActor`s given the run's variables `env`."""

    _queue_hub: Any = None
    env: dict[str, str] = {}

    @property
    def QueueClass(self) -> Callable[..., HubQueue]:
        def make(maxsize: int = 0, actor_options: dict[str, Any] | None = None) -> HubQueue:
            name = (actor_options or {}).get("name") or uuid.uuid4().hex
            return HubQueue(self._hub(), name)

        return make

    def _hub(self) -> Any:
        """The run's `QueueHub` actor, started on first use."""
        if self._queue_hub is None:
            actor = ray.remote(QueueHub).options(num_cpus=0, resources=driver_node())
            self._queue_hub = actor.remote()
        return self._queue_hub

    def _run_step(self, step: Any, input_queue: Any, replica: int) -> None:
        """Start one replica of `step`: a light step as a thread of the queue hub, any other
        as a `StepActor` with the step's resources."""
        wrapper = _StepWrapper(
            step=step,
            replica=replica,
            input_queue=input_queue,
            output_queue=self._output_queue,
            load_queue=self._load_queue,
            dry_run=self._dry_run,
            ray_pipeline=True,
        )
        args = (self.env, cloudpickle.dumps(wrapper), self._log_queue, self._ids)
        if isinstance(step, LightStep):
            self._hub().host_step.remote(*args)
            return
        res = step.resources
        options: dict[str, Any] = {"name": f"distilabel-{self.name}-{step.name}-{replica}"}
        asked = {"num_cpus": res.cpus, "num_gpus": res.gpus, "memory": res.memory}
        options |= {k: v for k, v in asked.items() if v is not None}
        if res.resources is not None:
            options["resources"] = res.resources
        handle: Any = ray.remote(StepActor).options(**options).remote(*args)
        handle.run.remote()

    @functools.cached_property
    def _ids(self) -> dict[str, str]:
        """What each step is told of the run: the pipeline's name and its signature (a dump
        of the whole pipeline, made once per run rather than once per replica)."""
        return {"name": self.name, "cache_id": self.signature}

    def dump(self, **kwargs: Any) -> dict[str, Any]:
        """distilabel's dump, typed as the local `Pipeline` as `RayPipeline.dump` does, but
        without `from distilabel.pipeline import Pipeline`: that package `__init__` brings
        `datasets` and pandas (0.45 s on the driver, before the first actor started)."""
        from distilabel.pipeline.local import Pipeline
        from distilabel.utils.serialization import TYPE_INFO_KEY

        dumped = BasePipeline.dump(self, **kwargs)
        dumped["pipeline"][TYPE_INFO_KEY] = {"module": Pipeline.__module__, "name": "Pipeline"}
        return dumped

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """distilabel's run, then the queue hub's actor is ended (it would idle on)."""
        try:
            return super().run(*args, **kwargs)
        finally:
            if self._queue_hub is not None and ray.is_initialized():
                ray.kill(self._queue_hub, no_restart=True)
                self._queue_hub = None


def ray_pipeline(
    pipeline: Any, engine_steps: set[str], env: dict[str, str]
) -> QuickQueuesRayPipeline:
    """`pipeline` as a `QuickQueuesRayPipeline` (what distilabel's `Pipeline.ray()` does),
    the steps not in `engine_steps` pinned to this machine, every step given `env`."""
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
    placed.env = env
    return placed


# distilabel's StepResources types its resources, GPUs and CPUs as ints; Ray takes fractions.
warnings.filterwarnings(
    "ignore", message=r"Pydantic serializer warnings:[\s\S]*field_name='(resources|gpus|cpus)'"
)
