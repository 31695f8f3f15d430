"""The Ray actors of a run on the Ray backend: one `QueueHub` for all its queues and a
`StepActor` for each step replica (placed by `magpie_hub.ray_pipeline`).

This module imports only Ray, so the worker of either actor imports magpie_hub, and with
it the stand-ins of `magpie_hub.deferred_imports`, before anything of distilabel's. The
run needs no `runtime_env`: with one, Ray started every worker through a setup process
that then started Python again (1.5-1.9 s for the node checks' three workers instead of
1.0-1.1 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import os
import queue
from typing import Any

import ray
from ray import cloudpickle


class StepActor:
    """One replica of a step. The run's variables are set before the step is unpickled
    (a module it imports may read them), then distilabel's step wrapper runs it."""

    def __init__(
        self, env: dict[str, str], step_wrapper: bytes, log_queue: Any, pipeline: dict[str, str]
    ) -> None:
        from distilabel import constants

        os.environ.update(env)
        os.environ[constants.PIPELINE_NAME_ENV_NAME] = pipeline["name"]
        os.environ[constants.PIPELINE_CACHE_ID_ENV_NAME] = pipeline["cache_id"]
        self.step_wrapper = cloudpickle.loads(step_wrapper)
        self.log_queue = log_queue

    def run(self) -> str:
        from distilabel.utils.logging import setup_logging

        setup_logging(log_queue=self.log_queue)
        return str(self.step_wrapper.run())


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
