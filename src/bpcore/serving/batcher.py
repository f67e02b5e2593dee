"""Dynamic batching: concurrent requests for one model and task become one model call.

As in LitServe's loops and Triton's dynamic batcher: the first waiting request opens a batch,
which takes more until it holds ``max_batch_size`` items or ``max_wait_ms`` passed; it then runs
on one of the model's threads, off the event loop, while the next batch forms and (with
``concurrent_batches`` above 1, the server's default 2) runs beside it: one batch at a time left
the second core of a 2-core machine idle (``bench/serve_throughput.py``). Only calls with the
same :attr:`~bpcore.calls.PreparedCall.key` (options, labels) share a model call; each
request gets exactly its own answers, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from bpcore.calls import PreparedCall, merge, split
from bpcore.errors import ServerError
from bpcore.tasks.base import Task


class Overloaded(ServerError):
    """More requests wait for a model than the server queues (HTTP 503 with Retry-After)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=503, retry_after=1.0)


@attrs.define
class _Waiting:
    call: PreparedCall
    future: asyncio.Future[Any]


#: ``observe(batch_items, seconds)`` after each model call, for the server's metrics.
Observer = Callable[[int, float], None]


class Batcher:
    """Gathers calls for one :class:`~bpcore.tasks.base.Task` and runs them in batches."""

    def __init__(
        self,
        task: Task,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        concurrent_batches: int = 1,
        observe: Observer | None = None,
    ) -> None:
        self.task = task
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.observe = observe
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(
            max_workers=concurrent_batches, thread_name_prefix=f"bpcore-{task.task}"
        )
        self._slots = asyncio.Semaphore(concurrent_batches)
        self._worker: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return self._queue.qsize()

    async def submit(self, call: PreparedCall) -> Any:
        """The answers to ``call``, as ``task.run(call)`` gives them, from a batch."""
        if self._queue.qsize() >= self.max_queue:
            raise Overloaded(f"{self.max_queue} requests already wait for this model; try again shortly")
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Waiting(call, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def retire(self) -> None:
        """Take no more calls (the model was replaced); end once the calls already here are answered."""
        asyncio.get_running_loop().create_task(self._close_when_idle())

    async def _close_when_idle(self) -> None:
        while self._queue.qsize() or self._running:
            await asyncio.sleep(0.05)
        await self.close()

    async def _work(self) -> None:
        while True:
            await self._slots.acquire()  # the next batch forms while up to N-1 others run
            try:
                batch = await self._gather()
            except BaseException:
                self._slots.release()
                raise
            running = asyncio.get_running_loop().create_task(self._run_batch(batch))
            self._running.add(running)
            running.add_done_callback(self._running.discard)

    async def _run_batch(self, batch: list[_Waiting]) -> None:
        try:
            groups: dict[str, list[_Waiting]] = {}
            for waiting in batch:
                groups.setdefault(waiting.call.key, []).append(waiting)
            for group in groups.values():
                await self._run(group)
        finally:
            self._slots.release()

    async def _gather(self) -> list[_Waiting]:
        batch = [await self._queue.get()]
        items, deadline = batch[0].call.count, time.monotonic() + self.max_wait
        while items < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                waiting = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else await asyncio.wait_for(self._queue.get(), remaining)
                )
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            batch.append(waiting)
            items += waiting.call.count
        return batch

    async def _run(self, group: list[_Waiting]) -> None:
        live = [waiting for waiting in group if not waiting.future.done()]  # a client may have gone
        if not live:
            return
        calls = [waiting.call for waiting in live]
        merged = merge(calls)
        started = time.perf_counter()
        try:
            answers = await asyncio.get_running_loop().run_in_executor(self._executor, self.task.run, merged)
        except Exception as error:  # every request of the batch gets the model's error
            for waiting in live:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
            return
        finally:
            if self.observe is not None:
                self.observe(merged.count, time.perf_counter() - started)
        for waiting, own in zip(live, split(calls, answers)):
            if not waiting.future.done():
                waiting.future.set_result(own)
