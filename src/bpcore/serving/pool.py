"""The models a server holds: each loaded once per process, on start or on its first request.

Clients name models by registered name or alias, or by the name a model was saved or uploaded
under (below ``$BPCORE_HOME``); never by a path, which would load any folder on the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from bpcore.errors import ModelNotFoundError, TaskNotSupportedError
from bpcore.tasks import Task


class ModelPool:
    """Loaded models by name, and one :class:`~bpcore.tasks.base.Task` per (task, model) over them."""

    def __init__(self, precision: str = "fp32") -> None:
        self.precision = precision  # every task's inference precision (bpcore serve --precision)
        self._models: dict[str, Any] = {}
        self._served: dict[str, str] = {}  # a start model's name (or path) -> its key
        self._tasks: dict[tuple[str, str], Task] = {}
        self._locks: dict[str, threading.Lock] = {}
        # A saved model's config identity when it loaded: another process may replace or delete it.
        self._stamps: dict[str, tuple[int, int] | None] = {}
        self._lock = threading.Lock()

    # -- start models -----------------------------------------------------------------------
    def load_at_start(self, names: Iterable[str]) -> None:
        """Load the models named at start (names or paths); each is then served under its name."""
        from bpcore.models.auto import resolve_model

        for name in names:
            model, _ = resolve_model(name)
            served = str(getattr(model, "name", None) or name)
            self._models[served] = model
            self._served[name] = self._served[served] = served

    @property
    def loaded(self) -> list[str]:
        return sorted(self._models)

    def forget(self, name: str) -> None:
        """Drop ``name`` (replaced or deleted by an upload): its next request loads it again."""
        with self._lock:
            self._models.pop(name, None)
            self._stamps.pop(name, None)
            for key in [key for key in self._tasks if key[1] == name]:
                del self._tasks[key]

    # -- requests ---------------------------------------------------------------------------
    def task(self, task: str, name: str | None) -> tuple[Task, str]:
        """The task object answering ``task`` with model ``name`` (None: the default), and the model's name."""
        key = self._key(task, name)
        if key in self._stamps and self._stamps[key] != _stamp(key):
            self.forget(key)  # uploaded again, or deleted, through another worker or replica
            key = self._key(task, name)
        with self._lock:
            front = self._tasks.get((task, key))
        if front is None:
            model = self._model(task, key)
            front = self._front(task, model)
            with self._lock:
                front = self._tasks.setdefault((task, key), front)
        return front, key

    def _key(self, task: str, name: str | None) -> str:
        from bpcore.plugins.registry import get_registry

        if name is None:
            started = [
                key for key in dict.fromkeys(self._served.values()) if _serves(self._models[key], task)
            ]
            return started[0] if started else get_registry().display_name(get_registry().default_for(task))
        if name in self._served:
            return self._served[name]
        registry = get_registry()
        try:
            return registry.display_name(registry.resolve(name, task=task))
        except ModelNotFoundError:
            if saved_name(name):
                return name
            raise ModelNotFoundError(
                f"this server has no model {name!r:.200}: name a registered model (GET /v1/models) "
                "or one uploaded to it"
            ) from None

    def _model(self, task: str, key: str) -> Any:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one load per model, however many requests ask at once
            model = self._models.get(key)
            if model is None:
                from bpcore.models.auto import resolve_model

                stamp = _stamp(key) if saved_name(key) else None  # before loading: a swap meanwhile reloads
                model, spec = resolve_model(key, task=task)
                with self._lock:
                    self._models[key] = model
                    if spec is None and stamp is not None:
                        self._stamps[key] = stamp
        return model

    def _front(self, task: str, model: Any) -> Task:
        from bpcore.models.direct import front_for

        if not _serves(model, task):
            raise TaskNotSupportedError(
                f"{getattr(model, 'name', None) or type(model).__name__} does not serve {task!r}"
            )
        front: Task = front_for(task)(model, precision=self.precision)
        return front


def _serves(model: Any, task: str) -> bool:
    tasks = getattr(model, "tasks", None)
    return tasks is None or task in tasks


def _stamp(name: str) -> tuple[int, int] | None:
    """The identity of a saved model's config (an upload swaps in a new folder, so a new file)."""
    from bpcore.saving import CONFIG_FILE, home

    try:
        status = (home() / name / CONFIG_FILE).stat()
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns


def saved_name(name: str) -> bool:
    """A name clients may use for a model saved or uploaded under ``$BPCORE_HOME``."""
    from bpcore.naming import NAME_PATTERN
    from bpcore.saving import CONFIG_FILE, home

    return bool(NAME_PATTERN.match(name)) and (home() / name / CONFIG_FILE).is_file()
