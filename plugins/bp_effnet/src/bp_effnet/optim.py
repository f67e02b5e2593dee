"""The finetuning optimizer: SGD with momentum and a linear learning-rate warm-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, overload

import torch


class WarmupSGD(torch.optim.SGD):
    """SGD whose learning rates rise linearly from ``lr / warmup_steps`` to ``lr`` over the first steps.

    bpcore's finetuning loop takes an optimizer but no scheduler, so the warm-up lives in
    ``step``. A freshly initialised head makes the first gradients large; ramping the rate up
    keeps momentum SGD from blowing up on them.

    The warm-up's progress (``steps_taken``) and each group's full rate (``target_lr``) live
    in the param groups, so :meth:`state_dict` holds them: a run resumed from a checkpoint
    (Accelerate's ``save_state`` / ``load_state``) continues the warm-up where it stopped
    instead of starting it again.

    Example::

        optimizer = WarmupSGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, warmup_steps=10)
        restored = WarmupSGD(model.parameters(), lr=0.1, momentum=0.9, warmup_steps=10)
        restored.load_state_dict(optimizer.state_dict())  # same step count, same rates
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
    ) -> None:
        # Read by add_param_group, which SGD's constructor calls for each group.
        self._initial_warmup_steps = warmup_steps
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self._apply_warmup()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("target_lr", group["lr"])
        group.setdefault("warmup_steps", self._initial_warmup_steps)
        # A group added mid-run joins the warm-up where the others are.
        group.setdefault("steps_taken", self.param_groups[0].get("steps_taken", 0))

    @property
    def warmup_steps(self) -> int:
        return int(self.param_groups[0]["warmup_steps"])

    @property
    def steps_taken(self) -> int:
        """Optimizer steps so far (saved and restored with the state dict)."""
        return int(self.param_groups[0]["steps_taken"])

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # a state dict saved before the counter was part of it
            group.setdefault("target_lr", group["lr"])
            group.setdefault("warmup_steps", self._initial_warmup_steps)
            group.setdefault("steps_taken", 0)

    def _apply_warmup(self) -> None:
        for group in self.param_groups:
            warmup = group["warmup_steps"]
            scale = min(1.0, (group["steps_taken"] + 1) / warmup) if warmup else 1.0
            group["lr"] = group["target_lr"] * scale

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = super().step(closure)
        for group in self.param_groups:
            group["steps_taken"] += 1
        self._apply_warmup()
        return loss
