"""What a training run settles once, before any attempt: :class:`Setup` (and the checkpoint it resumes)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch

from bpcore.training.data import MakeBatchPlan, epoch_plan, process_loader
from bpcore.training.history import History

Step = Callable[[Any, int], torch.Tensor]
#: ``evaluate(indices)``: the metrics of the model on the examples at ``indices``, one number each.
Evaluate = Callable[[Sequence[int]], Mapping[str, float]]


@attrs.frozen
class Resumed:
    """The checkpoint a run continues: its folder and its checked loop state."""

    folder: Path
    loop_state: dict[str, Any]


@attrs.define
class Setup:
    """What :func:`fit` settles once, before any attempt: the options, seed, split and batch size."""

    model: torch.nn.Module
    dataset: Any
    step: Step
    configure_optimizers: Callable[[], torch.optim.Optimizer]
    collate_fn: Callable[[list[Any]], Any] | None
    make_batch_plan: MakeBatchPlan | None
    groups: Sequence[Hashable] | None
    cpu: bool
    #: Every option of :class:`~bpcore.training.options.LoopOptions`, at its default when not given.
    options: dict[str, Any]
    state: Any
    seed: int
    history: History
    resumed: Resumed | None = None
    #: What computes the metrics of ``metrics=True`` (the task's evaluation), on the validation indices.
    evaluate: Evaluate | None = None
    train_indices: list[int] = attrs.field(factory=list)
    val_indices: list[int] = attrs.field(factory=list)
    start_batch_size: int = 1
    initial_state: dict[str, torch.Tensor] = attrs.field(factory=dict)

    @property
    def can_retry(self) -> bool:
        """With no batch size given, an out-of-memory error retries with a smaller batch."""
        given = self.options["batch_size"] is not None or self.options["train_dataloader"] is not None
        return not given and self.resumed is None

    def fingerprint(self, size: int, accumulation: int) -> dict[str, Any]:
        """What must match for a checkpoint to continue this run; the number of processes need not."""
        return {
            "examples": len(self.dataset),
            "split": [
                len(self.train_indices),
                len(self.val_indices),
                hash(tuple(self.train_indices)) % 2**31,
            ],
            "batch_size": size,
            "gradient_accumulation_steps": accumulation,
            # warmup_steps only when set: checkpoints written before it existed still match.
            "lr_scheduler": [self.options["lr_scheduler"], self.options["warmup_ratio"]]
            + ([self.options["warmup_steps"]] if self.options["warmup_steps"] else []),
            # Only when not the loss: checkpoints written before it existed still match. A best
            # accuracy cannot go on as a best loss.
            **self._early_stopping_metric(),
        }

    def _early_stopping_metric(self) -> dict[str, str]:
        name = self.options["early_stopping_metric"]
        return {} if name == "-loss" else {"early_stopping_metric": name}

    def loaders(self, size: int) -> tuple[Any, Any]:
        """The training and validation loaders at batch ``size`` (the caller's own, where given)."""
        train, val = self.options["train_dataloader"], self.options["val_dataloader"]
        batching = self.make_batch_plan
        if train is None:
            plan = epoch_plan(self.train_indices, size, self.seed, True, batching, self.groups)
            train = process_loader(self.dataset, plan, self.state, self.collate_fn)
        elif val is None:
            return train, train
        if val is None:
            plan = epoch_plan(self.val_indices, size, self.seed + 1, False, batching, self.groups)
            val = process_loader(self.dataset, plan, self.state, self.collate_fn)
        return train, val
