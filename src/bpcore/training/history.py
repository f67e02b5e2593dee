"""What a finetuning run did: each epoch's losses (and metrics) and how it validated (no torch needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs


class BpcoreWarning(UserWarning):
    """Something worth knowing about a finetuning run (e.g. it validated on its training data)."""


def _metric_values(values: Mapping[str, Any] | None) -> dict[str, float]:
    # A strict JSON writer (the CLI's --json) turns a NaN metric into null.
    return {str(name): math.nan if value is None else float(value) for name, value in (values or {}).items()}


@attrs.frozen
class EpochRecord:
    """One epoch: its mean training and validation losses, how long it took, its last learning rate,
    and the task's metrics on the validation part (``metrics=True``; else empty)."""

    epoch: int
    train_loss: float
    val_loss: float
    seconds: float = 0.0
    learning_rate: float | None = None
    metrics: dict[str, float] = attrs.field(factory=dict, converter=_metric_values, hash=False)


@attrs.define
class History:
    """What :func:`~bpcore.training.fit` did: the losses (and metrics) of each epoch and how it validated.

    ``validated_on`` is ``"validation split"``, ``"validation dataloader"`` or, when the data
    was too small to hold any out, ``"training data"``.
    """

    epochs: list[EpochRecord] = attrs.field(factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    validated_on: str = "validation split"
    batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    seed: int | None = None
    #: The number of processes that trained (``torchrun`` / ``accelerate launch``).
    num_processes: int = 1
    #: The epoch a resumed run continued after (``resume=True``), else None.
    resumed_after_epoch: int | None = None
    #: The training loss of every batch, in order (the mean over processes).
    step_losses: list[float] = attrs.field(factory=list)
    #: What chose ``best_epoch``: ``"-loss"`` (the validation loss) or a metric's name.
    early_stopping_metric: str = "-loss"

    @property
    def train_loss(self) -> list[float]:
        return [record.train_loss for record in self.epochs]

    @property
    def val_loss(self) -> list[float]:
        return [record.val_loss for record in self.epochs]

    @property
    def metrics(self) -> list[dict[str, float]]:
        """The metrics of each epoch on the validation part (``metrics=True``), e.g.
        ``[m["accuracy"] for m in history.metrics]``; empty dicts for a run without them."""
        return [dict(record.metrics) for record in self.epochs]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """The history :meth:`as_dict` gave as ``data`` (say, read back from JSON)."""
        fields = dict(data)
        fields["epochs"] = [EpochRecord(**record) for record in fields.get("epochs", [])]
        return cls(**fields)

    @property
    def seconds(self) -> float:
        """The time the recorded epochs took."""
        return sum(record.seconds for record in self.epochs)

    def __len__(self) -> int:
        return len(self.epochs)
