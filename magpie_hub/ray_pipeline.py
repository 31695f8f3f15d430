"""distilabel's `RayPipeline`, placed for our steps (imported on the Ray backend only).

Steps without an engine (row source, writers, taggers) are pinned to this machine, where
the build folder is, and hold no CPU slot: Ray gives an actor with a custom resource one
CPU for its lifetime, and three such steps on two CPUs never all start.

distilabel makes every queue (log, output, load, one input per step) a Ray actor of its
own. Each such actor unpickled what it carried, so the first batch put on each queue made
that bare Ray worker import distilabel (1.0 to 2.3 s a queue on 2 cores, on the path of
the first batch through every step), and the seven worker processes started one after
another on the driver's node. Here all queues of a run live in one actor (`QueueHub`) on
the driver's node, asking for no CPU, and hold pickled bytes.
"""

from __future__ import annotations

import asyncio
import queue
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import ray
from distilabel.pipeline.base import BasePipeline
from distilabel.pipeline.ray import RayPipeline
from ray import cloudpickle

from magpie_hub.execution import driver_node


class QueueHub:
    """The queues of one pipeline run, by name, in one actor (async: a waiting `get`
    blocks no other call)."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[bytes]] = {}

    def _queue(self, name: str) -> asyncio.Queue[bytes]:
        return self.queues.setdefault(name, asyncio.Queue())

    async def put(self, name: str, item: bytes) -> None:
        self._queue(name).put_nowait(item)

    async def get(self, name: str, block: bool, timeout: float | None) -> tuple[bool, bytes | None]:
        """(True, item), or (False, None) when none is there (or came within `timeout`)."""
        try:
            if not block:
                return True, self._queue(name).get_nowait()
            return True, await asyncio.wait_for(self._queue(name).get(), timeout)
        except (TimeoutError, asyncio.QueueEmpty):
            return False, None

    async def qsize(self, name: str) -> int:
        return self._queue(name).qsize()


class HubQueue:
    """One named queue of a `QueueHub`, with the part of `queue.Queue` distilabel uses."""

    def __init__(self, hub: Any, name: str) -> None:
        self.hub, self.name = hub, name

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        ray.get(self.hub.put.remote(self.name, cloudpickle.dumps(item)))

    def put_nowait(self, item: Any) -> None:
        self.put(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        ok, item = ray.get(self.hub.get.remote(self.name, block, timeout))
        if not ok:
            raise queue.Empty
        return cloudpickle.loads(item)

    def qsize(self) -> int:
        return int(ray.get(self.hub.qsize.remote(self.name)))

    def empty(self) -> bool:
        return self.qsize() == 0

    def shutdown(self) -> None:
        """The hub outlives each queue; the pipeline ends it after its run."""


class QuickQueuesRayPipeline(RayPipeline):
    """`RayPipeline` whose queues are `HubQueue`s of one `QueueHub` on the driver's node."""

    _queue_hub: Any = None

    @property
    def QueueClass(self) -> Callable[..., HubQueue]:
        def make(maxsize: int = 0, actor_options: dict[str, Any] | None = None) -> HubQueue:
            if self._queue_hub is None:
                actor = ray.remote(QueueHub).options(num_cpus=0, resources=driver_node())
                self._queue_hub = actor.remote()
            name = (actor_options or {}).get("name") or uuid.uuid4().hex
            return HubQueue(self._queue_hub, name)

        return make

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
