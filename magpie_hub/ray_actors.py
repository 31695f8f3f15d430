"""The Ray actors of a run on the Ray backend: one `QueueHub` for all its queues, which
also runs the light steps (row source, writers) as threads, and a `StepActor` for each
replica of any other step (placed by `magpie_hub.ray_pipeline`).

This module imports only Ray, so the worker of either actor imports magpie_hub, and with
it the stand-ins of `magpie_hub.deferred_imports`, before anything of distilabel's. The
run needs no `runtime_env`: with one, Ray started every worker through a setup process
that then started Python again (1.5-1.9 s for the node checks' three workers instead of
1.0-1.1 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from typing import Any

import ray
from ray import cloudpickle


def unpickled_step(env: dict[str, str], step_wrapper: bytes, pipeline: dict[str, str]) -> Any:
    """distilabel's step wrapper, unpickled once the run's variables are set (a module it
    imports may read them)."""
    from distilabel import constants

    os.environ.update(env)
    os.environ[constants.PIPELINE_NAME_ENV_NAME] = pipeline["name"]
    os.environ[constants.PIPELINE_CACHE_ID_ENV_NAME] = pipeline["cache_id"]
    return cloudpickle.loads(step_wrapper)


class StepActor:
    """One replica of a step, in a process of its own."""

    def __init__(
        self, env: dict[str, str], step_wrapper: bytes, log_queue: Any, pipeline: dict[str, str]
    ) -> None:
        self.step_wrapper = unpickled_step(env, step_wrapper, pipeline)
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

    async def host_step(
        self, env: dict[str, str], step_wrapper: bytes, log_queue: Any, pipeline: dict[str, str]
    ) -> None:
        """Start one replica of a light step as a thread of this actor: a process of its
        own cost a Ray worker and distilabel's import, about 1 s of CPU a step."""
        loop_thread = threading.get_ident()
        args = (env, step_wrapper, log_queue, pipeline, loop_thread)
        threading.Thread(target=_run_hosted, args=args, daemon=True).start()


def _run_hosted(
    env: dict[str, str], step_wrapper: bytes, log_queue: Any, pipeline: dict[str, str], loop: int
) -> None:
    """Run a hosted step. Its log records go to the run's log queue as a step actor's do,
    but not those of the hub's event loop thread: putting them would wait on that loop."""
    from distilabel.utils.logging import setup_logging

    wrapper = unpickled_step(env, step_wrapper, pipeline)
    with _LOGGING:
        setup_logging(log_queue=log_queue)  # replaces the root handlers, the same each time
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda record: record.thread != loop)
    wrapper.run()


_LOGGING = threading.Lock()


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
