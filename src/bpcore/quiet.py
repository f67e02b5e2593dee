"""Third-party noise while a model loads or saves: silenced unless the user asks for it.

Family libraries print progress bars ("Loading weights") and log lines ("ERROR:root:Failed to
download weights") on their own; when a load fails, bpcore's own error then follows a wall of
text that says less. Within :func:`quiet`, log records below CRITICAL are dropped and the
progress bars a plugin names are switched off; ``BPCORE_VERBOSE=1`` shows everything again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: A library's progress-bar switch: (is it on?, turn it off, turn it on).
BarSwitch = tuple[Callable[[], bool], Callable[[], None], Callable[[], None]]

_lock = threading.Lock()
_depth = 0
_logging_before = logging.NOTSET
_restore: list[Callable[[], None]] = []


def verbose() -> bool:
    """Whether the user asked to see third-party output (``BPCORE_VERBOSE`` set, and not ``0``/``false``)."""
    return os.environ.get("BPCORE_VERBOSE", "").strip().lower() not in ("", "0", "false", "no")


@contextmanager
def quiet(*bars: BarSwitch) -> Iterator[None]:
    """Silence log lines (all loggers) and the given libraries' progress bars within the block.

    Nested and concurrent blocks are safe: the first in turns things off, the last out restores
    what was there. Example (a plugin's load)::

        from transformers.utils import logging as hf_logging
        from bpcore.plugins import quiet

        BARS = (hf_logging.is_progress_bar_enabled, hf_logging.disable_progress_bar, hf_logging.enable_progress_bar)
        with quiet(BARS):
            model = AutoModel.from_pretrained(path)
    """
    if verbose():
        yield
        return
    _enter(bars)
    try:
        yield
    finally:
        _leave()


def _enter(bars: tuple[BarSwitch, ...]) -> None:
    global _depth, _logging_before
    with _lock:
        if _depth == 0:
            _logging_before = logging.root.manager.disable
            logging.disable(logging.ERROR)
        _depth += 1
        for is_on, turn_off, turn_on in bars:
            if is_on():
                turn_off()
                _restore.append(turn_on)


def _leave() -> None:
    # Only the last block out restores: a bar turned back on early would print in another's load.
    global _depth
    with _lock:
        _depth -= 1
        if _depth == 0:
            for turn_on in _restore:
                turn_on()
            _restore.clear()
            logging.disable(_logging_before)
