"""A task call checked and ready for its model: what a server batches and a remote task sends.

A task's ``__call__`` turns the spec's arguments into its input schema (one list per field,
images decoded) and hands that to :meth:`bpcore.tasks.base.Task._infer`. Inside
:func:`preparing`, ``_infer`` stops there and returns the :class:`PreparedCall`, so the spec's
signature stays the one place a task's arguments are read. Calls with the same options
(:attr:`PreparedCall.key`) are one model call for the model, whoever made them: :func:`merge`
joins them and :func:`split` hands each its own answers back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import attrs

from bpcore.flags import setting

_PREPARING: ContextVar[bool] = ContextVar("bpcore_preparing", default=False)


@attrs.frozen
class PreparedCall:
    """One task call, validated: ``payload`` is what the model receives (lists are per item)."""

    task: str
    payload: dict[str, Any]
    single: bool
    model_kwargs: dict[str, bool] = attrs.field(factory=dict)

    @property
    def count(self) -> int:
        """How many items (answers) the call has."""
        return len(next(iter(self.payload.values())))

    @property
    def key(self) -> str:
        """Equal for calls the model answers the same way when joined: same options and same labels."""
        shared = {name: value for name, value in self.payload.items() if not isinstance(value, list)}
        labels = self.payload.get("labels")
        if labels is not None:
            shared["labels"] = labels[0] if all(item == labels[0] for item in labels) else labels
        return json.dumps([self.task, shared, self.model_kwargs], sort_keys=True, default=repr)


@contextmanager
def preparing() -> Iterator[None]:
    """Task calls made inside return their :class:`PreparedCall` instead of calling the model."""
    with setting(_PREPARING, True):
        yield


def is_preparing() -> bool:
    return _PREPARING.get()


def merge(calls: Sequence[PreparedCall]) -> PreparedCall:
    """One call holding the items of ``calls`` (which share a :attr:`~PreparedCall.key`), in order."""
    first = calls[0]
    payload = {
        name: [item for call in calls for item in call.payload[name]] if isinstance(value, list) else value
        for name, value in first.payload.items()
    }
    return PreparedCall(first.task, payload, single=False, model_kwargs=first.model_kwargs)


def split(calls: Sequence[PreparedCall], answers: Sequence[Any]) -> list[Any]:
    """Each call's own answers from the answers of their :func:`merge`: one for a single call, a list otherwise."""
    results, start = [], 0
    for call in calls:
        own = answers[start : start + call.count]
        start += call.count
        results.append(own[0] if call.single else own)
    return results
