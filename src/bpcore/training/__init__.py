"""Finetuning: the options (declared once), the loop, and what it is built from.

- :mod:`~bpcore.training.options`: every finetuning option, declared once (:class:`TrainingOptions`);
- :mod:`~bpcore.training.loop`: :func:`fit`, the loop every task's ``finetune`` runs;
- :mod:`~bpcore.training.run`: one attempt of a run, in named steps;
- :mod:`~bpcore.training.data`: the validation split, each epoch's batches, the loaders;
- :mod:`~bpcore.training.history`: what a run did (:class:`History`);
- :mod:`~bpcore.training.checkpoints`, :mod:`~bpcore.training.schedules`,
  :mod:`~bpcore.training.samplers`, :mod:`~bpcore.training.losses`,
  :mod:`~bpcore.training.distributed`: the parts.

Importing this package imports no torch (``import bpcore`` does it): the options and the
history come at once, :func:`fit` and :func:`split_indices` on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bpcore.training.history import BpcoreWarning, EpochRecord, History
from bpcore.training.options import LoopOptions, Option, TrainingOptions, check_options

if TYPE_CHECKING:
    from bpcore.training.data import split_indices
    from bpcore.training.loop import fit

#: Names that need torch, and the module each comes from.
_LAZY = {"fit": "bpcore.training.loop", "split_indices": "bpcore.training.data"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BpcoreWarning",
    "EpochRecord",
    "History",
    "LoopOptions",
    "Option",
    "TrainingOptions",
    "check_options",
    "fit",
    "split_indices",
]
