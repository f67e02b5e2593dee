"""What one server process holds: its settings, models, batchers and metrics, and how it answers a call."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Response
from fastapi.concurrency import run_in_threadpool

from bpcore.calls import PreparedCall
from bpcore.models.direct import front_for
from bpcore.serving.batcher import Batcher
from bpcore.serving.config import ServeConfig
from bpcore.serving.http_errors import Unauthorized
from bpcore.serving.metrics import Metrics
from bpcore.serving.openapi import check_body
from bpcore.serving.pool import ModelPool
from bpcore.tasks.base import Task


class Server:
    """What one server process holds: its settings, models, batchers and metrics."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.pool = ModelPool(config.precision)
        self.metrics = Metrics()
        self.batchers: dict[tuple[str, str], Batcher] = {}
        self.ready = False
        #: How a route answers a wrong key, where not in bpcore's JSON error shape (the OpenAI routes).
        self.key_error_shapes: dict[str, Callable[[BaseException], Response]] = {}

    def batcher(self, task: str, model: str, front: Any) -> Batcher:
        """The batcher of ``front`` (a task over one model); a replaced model's batcher retires."""
        batcher = self.batchers.get((task, model))
        if batcher is not None and batcher.task is not front:
            batcher.retire()  # answers what it holds, then ends
            batcher = None
        if batcher is None:
            batcher = Batcher(
                front,
                max_batch_size=self.config.max_batch_size,
                max_wait_ms=self.config.max_wait_ms,
                max_queue=self.config.max_queue,
                concurrent_batches=self.config.concurrent_batches,
                observe=self.metrics.observer(task, model),
            )
            self.metrics.queue.labels(task, model).set_function(lambda: batcher.depth)
            self.batchers[(task, model)] = batcher
        return batcher

    def forget(self, name: str) -> None:
        """A model replaced or deleted here: its next request loads it anew (calls in flight finish on the old one)."""
        self.pool.forget(name)

    def check_key(self, headers: Mapping[str, str]) -> None:
        """Accept ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` with one of the server's keys."""
        if not self.config.api_keys:
            return
        given = headers.get("x-api-key") or ""
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            given = token.strip()
        if not any(secrets.compare_digest(given.encode(), key.encode()) for key in self.config.api_keys):
            raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")

    async def answer(self, task: str, body: Any) -> dict[str, Any]:
        """The answer to one task call: checked here, run in a batch."""
        model, arguments = check_body(front_for(task), body)
        answer, key, _ = await self.run_call(task, model, arguments)
        return {"task": task, "model": key, "answer": answer}

    async def run_call(
        self, task: str, model: str | None, arguments: dict[str, Any]
    ) -> tuple[Any, str, Task]:
        """``(answer, model name, task object)`` of a call with the task's own arguments.

        The one path every route takes (native and OpenAI-compatible): the pool's model, the
        task's own checks (``prepare``), and the batcher of that task and model, so calls from
        either route share model calls.
        """
        from bpcore.images import base64_only

        front, key = await run_in_threadpool(self.pool.task, task, model)

        def prepare() -> PreparedCall:
            with base64_only():
                return front.prepare(**arguments)

        call = await run_in_threadpool(prepare)
        answer = await self.batcher(task, key, front).submit(call)
        return answer, key, front
