"""One readers-writer lock per model: calls share a model, finetuning has it to itself.

Many threads may call one model at once (a server, a thread pool): inference changes no shared
state. Finetuning does (weights, training mode), so it waits for the calls in flight, and calls
made meanwhile wait for it to end: nobody is answered from half-trained weights, and no call
switches a training model to ``eval()`` mid-step. Waiting writers go first, so a steady stream
of calls cannot starve a finetune.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from bpcore.errors import TrainingError

_LOCKS: weakref.WeakKeyDictionary[Any, ModelLock] = weakref.WeakKeyDictionary()
_UNREFERENCEABLE: dict[int, tuple[Any, ModelLock]] = {}
_GUARD = threading.Lock()


class ModelLock:
    """A writer-preferring readers-writer lock; re-entrant for the thread that holds it.

    Example::

        lock = lock_for(model)
        with lock.reading():     # any number of threads at once
            model(task_input, task="text-vectorisation")
        with lock.writing():     # alone: waits for the readers, holds back new ones
            fit(model, dataset)
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers: dict[int, int] = {}
        self._writer: int | None = None
        self._writer_depth = 0
        self._writers_waiting = 0

    def held_for_writing(self) -> bool:
        """Whether the calling thread holds the lock for writing (it is finetuning the model)."""
        return self._writer == threading.get_ident()

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Share the model with other readers; wait while a writer holds or awaits it."""
        me = threading.get_ident()
        with self._condition:
            # The writer's own calls (and nested calls of a reader) must not wait for themselves.
            if self._writer != me and me not in self._readers:
                while self._writer is not None or self._writers_waiting:
                    self._condition.wait()
            if self._writer != me:
                self._readers[me] = self._readers.get(me, 0) + 1
        try:
            yield
        finally:
            with self._condition:
                if self._writer != me:
                    self._readers[me] -= 1
                    if not self._readers[me]:
                        del self._readers[me]
                        self._condition.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Have the model alone: wait for the calls in flight; new calls wait until this ends."""
        me = threading.get_ident()
        with self._condition:
            if self._writer != me:
                if me in self._readers:
                    raise TrainingError(
                        "a model cannot be finetuned from inside one of its own calls "
                        "(this thread is still answering with it)"
                    )
                self._writers_waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._condition.wait()
                finally:
                    self._writers_waiting -= 1
                self._writer = me
            self._writer_depth += 1
        try:
            yield
        finally:
            with self._condition:
                self._writer_depth -= 1
                if not self._writer_depth:
                    self._writer = None
                    self._condition.notify_all()


def lock_for(model: Any) -> ModelLock:
    """The lock of ``model`` (one per model object, however many tasks share it)."""
    with _GUARD:
        try:
            lock = _LOCKS.get(model)
            if lock is None:
                lock = _LOCKS[model] = ModelLock()
            return lock
        except TypeError:  # not weakly referenceable (rare for a callable): keep it alive with its lock
            entry = _UNREFERENCEABLE.get(id(model))
            if entry is None or entry[0] is not model:
                entry = _UNREFERENCEABLE[id(model)] = (model, ModelLock())
            return entry[1]
