"""Work across the processes of a multi-process run (``torchrun``, ``accelerate launch``)."""

from __future__ import annotations

from typing import Any

import torch


def world_size() -> int:
    """How many processes train together (1 without torch.distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def process_index() -> int:
    """This process's rank (0 is the main process; 0 without torch.distributed)."""
    import torch.distributed as dist

    return dist.get_rank() if world_size() > 1 else 0


def wait_for_processes() -> None:
    """A barrier: every process waits here until all have come (nothing without torch.distributed)."""
    import torch.distributed as dist

    if world_size() > 1:
        dist.barrier()


def gather_across_processes(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's ``tensor`` concatenated along dim 0, in process order; gradients flow back.

    A loss over the whole batch (a triplet loss mines negatives among all its items) computes
    on the gathered embeddings; the backward pass sends each process the gradient of its own
    rows. Processes may hold different numbers of rows. With one process, ``tensor`` itself.
    """
    import torch.distributed as dist

    if world_size() == 1:
        return tensor
    count = torch.tensor([tensor.shape[0]], device=tensor.device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    sizes = [int(size) for size in counts]
    padded = tensor
    if tensor.shape[0] < max(sizes):  # all_gather needs equal shapes
        filler = tensor.new_zeros((max(sizes) - tensor.shape[0], *tensor.shape[1:]))
        padded = torch.cat([tensor, filler])
    parts = _AllGather.apply(padded) if tensor.requires_grad else _all_gather(padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def _all_gather(tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
    import torch.distributed as dist

    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return tuple(parts)


class _AllGather(torch.autograd.Function):
    """all_gather whose backward hands each process the gradient of its own part, summed over
    the processes (each computes the same loss on the gathered parts; DDP then averages)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _all_gather(tensor)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        stacked = torch.stack(grads)
        dist.all_reduce(stacked)
        return stacked[dist.get_rank()]


def has_unused_parameters(model: torch.nn.Module, step: Any, loader: Any, state: Any) -> bool:
    """Whether the loss leaves some trainable parameter without a gradient (DDP must then look for them).

    A model may say so with a ``find_unused_parameters`` attribute; otherwise one training
    step on this process's first batch finds out, and leaves no trace (weights, batch-norm
    statistics and random state are restored). Every process must configure DDP alike, so
    the answer is agreed over the processes (any process finding some means all look).
    """
    from accelerate.utils import reduce

    declared = getattr(model, "find_unused_parameters", None)
    unused = bool(declared) if declared is not None else _probe_unused(model, step, loader, state)
    flag = torch.tensor([float(unused)], device=state.device)
    return bool(reduce(flag, reduction="sum").item() > 0)


def _probe_unused(model: torch.nn.Module, step: Any, loader: Any, state: Any) -> bool:
    import random

    from accelerate.utils import send_to_device

    saved = {key: value.detach().clone() for key, value in model.state_dict().items()}
    training, python_random = model.training, random.getstate()
    try:
        for parameter in model.parameters():
            parameter.grad = None
        model.train()
        devices = [state.device.index or 0] if state.device.type == "cuda" else []
        # Inside: starting a DataLoader draws from torch's generator too.
        with torch.random.fork_rng(devices=devices):
            batch = send_to_device(next(iter(loader)), state.device)
            loss = step(batch, 0)
            if isinstance(loss, torch.Tensor) and loss.requires_grad:
                loss.backward()
        return any(p.requires_grad and p.grad is None for p in model.parameters())
    except Exception:  # the real first step reports the problem; be safe until then
        return True
    finally:
        for parameter in model.parameters():
            parameter.grad = None
        model.load_state_dict(saved)
        model.train(training)
        random.setstate(python_random)
