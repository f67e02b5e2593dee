"""Choosing a device: ``None`` means CUDA when there is one, else the CPU."""

from __future__ import annotations

from typing import Any


def resolve_device(device: Any = None) -> Any:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
