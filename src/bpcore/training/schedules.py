"""Learning-rate schedules with linear warm-up, stepped once per optimizer step."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, get_args

from bpcore.training.options import LrScheduler

if TYPE_CHECKING:
    import torch

#: ``lr_scheduler`` names: the factor on the optimizer's learning rate after warm-up.
LR_SCHEDULERS: tuple[str, ...] = get_args(LrScheduler)


def lr_factor(name: str, step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor at optimizer ``step`` (0-based), as Hugging Face's schedulers give it.

    Warm-up rises linearly from 0; then ``constant`` stays at 1, ``linear`` falls to 0 at
    ``total_steps`` and ``cosine`` follows half a cosine down to 0.
    """
    if step < warmup_steps:
        return step / warmup_steps
    if name == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if name == "linear":
        return max(0.0, 1.0 - progress)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    warmup_ratio: float,
    total_steps: int,
    warmup_steps: int | None = None,
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """A scheduler for ``optimizer``, or None when the learning rate never changes.

    The warm-up lasts ``warmup_steps`` optimizer steps when given, else ``warmup_ratio`` of them.
    """
    from torch.optim.lr_scheduler import LambdaLR

    if warmup_steps is None:
        warmup_steps = math.ceil(warmup_ratio * total_steps)
    if name == "constant" and warmup_steps == 0:
        return None
    return LambdaLR(optimizer, lambda step: lr_factor(name, step, warmup_steps, total_steps))
