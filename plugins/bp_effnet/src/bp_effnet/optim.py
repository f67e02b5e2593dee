"""The finetuning optimizer: SGD with momentum and a linear learning-rate warm-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class WarmupSGD(torch.optim.SGD):
    """SGD whose learning rates rise linearly from ``lr / warmup_steps`` to ``lr`` over the first steps.

    bpcore's finetuning loop takes an optimizer but no scheduler, so the warm-up lives in
    ``step``. A freshly initialised head makes the first gradients large; ramping the rate up
    keeps momentum SGD from blowing up on them.

    Example::

        optimizer = WarmupSGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, warmup_steps=10)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
    ) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.warmup_steps = warmup_steps
        self.steps_taken = 0
        for group in self.param_groups:
            group.setdefault("target_lr", group["lr"])
        self._apply_warmup()

    def _apply_warmup(self) -> None:
        scale = min(1.0, (self.steps_taken + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        for group in self.param_groups:
            group["lr"] = group["target_lr"] * scale

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = super().step(closure)
        self.steps_taken += 1
        self._apply_warmup()
        return loss
