"""Choosing a device: ``None`` means CUDA when there is one, else the CPU."""

from __future__ import annotations

from typing import Any

from bpcore.errors import InputError, InputTypeError


def resolve_device(device: Any = None) -> Any:
    """The ``torch.device`` for ``device`` (None: CUDA when available, else the CPU).

    A device that does not exist or is not available here raises :class:`~bpcore.InputError`
    naming ``device``, e.g. ``device="cuda"`` on a machine without CUDA.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise InputTypeError(
            f"expected a device such as 'cpu' or 'cuda:0', got {type(device).__name__}", field="device"
        )
    if isinstance(device, int) and device < 0:
        raise InputError(f"{device} is not a device index", field="device")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(
            f"{device!r} is not a device; use 'cpu', 'cuda', 'cuda:1', 'mps', ...", field="device"
        ) from None
    if resolved.type == "cuda":
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not available:
            raise InputError(f"{device!r}: CUDA is not available on this machine; use 'cpu'", field="device")
        if resolved.index is not None and resolved.index >= available:
            raise InputError(
                f"{device!r}: this machine has {available} CUDA device(s), numbered from 0", field="device"
            )
    elif resolved.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise InputError(f"{device!r}: MPS is not available on this machine; use 'cpu'", field="device")
    return resolved
