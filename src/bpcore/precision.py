"""Inference precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (bf16 only where the hardware has it).

bf16 runs the model's matrix products in bfloat16 through ``torch.autocast``: the weights the
user handed in stay as they are (nothing is converted or copied), and finetuning is untouched
(it keeps its own mixed-precision setting). It pays only on hardware that computes bf16 natively:
a CPU with AMX or avx512-bf16, or a GPU that supports it. Elsewhere bf16 is emulated and much
slower (all-MiniLM-L6-v2 on an avx2-only AMD EPYC: 6.8x slower than fp32), so ``"auto"`` keeps
fp32 there.

Example::

    tv = bpcore.TextVectorisation(precision="auto")
    tv.precision            # "bf16" on a CPU with AMX or avx512-bf16, else "fp32"
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from bpcore.errors import InputError

#: What ``precision=`` takes.
PRECISIONS = ("fp32", "bf16", "auto")


def check_precision(precision: Any) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else an :class:`~bpcore.InputError` naming it."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InputError(f"expected one of {', '.join(PRECISIONS)}, got {precision!r}", field="precision")
    return precision


def native_bf16(device: Any) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU that supports it, or a CPU with AMX or avx512-bf16."""
    import torch

    return _native_bf16(torch.device(device).type if device is not None else "cpu")


@functools.cache
def _native_bf16(kind: str) -> bool:
    import torch

    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu":
        return False
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def resolve_precision(precision: str, device: Any) -> str:
    """The precision to run with: ``"auto"`` becomes ``"bf16"`` where :func:`native_bf16`, else ``"fp32"``."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


@contextlib.contextmanager
def running_in(precision: str, device: Any) -> Iterator[None]:
    """Run the block in ``precision`` (already resolved) on ``device``: autocast for bf16, nothing for fp32."""
    if precision != "bf16":
        yield
        return
    import torch

    kind = torch.device(device).type if device is not None else "cpu"
    with torch.autocast(device_type=kind, dtype=torch.bfloat16):
        yield
