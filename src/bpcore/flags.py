"""Per-call flags in context variables: set for a ``with`` block, in this thread or task only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def setting(variable: ContextVar[T], value: T) -> Iterator[None]:
    """``variable`` is ``value`` inside the block, and what it was after it (errors included)."""
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)
