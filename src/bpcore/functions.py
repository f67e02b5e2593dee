"""Small numeric helpers users reach for next to the tasks."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bpcore.errors import InputError, InputTypeError

if TYPE_CHECKING:
    import torch


def cosine_similarity(
    vec1: Sequence[float] | Any, vec2: Sequence[float] | Sequence[Sequence[float]] | Any
) -> float | list[float]:
    """Cosine similarity of ``vec1`` with one vector (a float) or with each of several (a list).

    Vectors are lists of numbers or 1-D tensors; several are a list of them or a 2-D tensor.
    Each must be as long as ``vec1``: otherwise :class:`bpcore.InputError` names the one
    that is not (``vec2`` or ``vec2[i]``).

    Example::

        bpcore.cosine_similarity(vec1, vec2)            # 0.8982
        bpcore.cosine_similarity(vec1, [vec2, vec3])    # [0.8982, 0.3421]
    """
    import torch

    first = _vector(vec1, "vec1")
    many = _is_many(vec2)
    fields = [f"vec2[{index}]" for index in range(len(vec2))] if many else ["vec2"]
    seconds = [_vector(value, field) for value, field in zip(vec2 if many else [vec2], fields)]
    problems = [
        (field, f"has {len(second)} numbers, vec1 has {len(first)}")
        for field, second in zip(fields, seconds)
        if len(second) != len(first)
    ]
    if not seconds:  # a 2-D tensor with no rows
        raise InputError("holds no vectors", field="vec2")
    if problems:
        raise InputError(problems)
    similarities = torch.nn.functional.cosine_similarity(first.reshape(1, -1), torch.stack(seconds))
    return similarities.tolist() if many else float(similarities[0])


def _is_many(vec2: Any) -> bool:
    """Whether ``vec2`` holds several vectors (a list of them, or a 2-D tensor or array)."""
    if getattr(vec2, "ndim", None) == 2:
        return True
    if not isinstance(vec2, (list, tuple)) or not vec2:
        return False
    first = vec2[0]
    # NumPy's scalars are numbers.Number too; a 0-d tensor is one number.
    return not isinstance(first, numbers.Number) and getattr(first, "ndim", None) != 0


def _vector(value: Any, field: str) -> torch.Tensor:
    """``value`` as a non-empty 1-D float tensor on the CPU; errors name ``field``."""
    import torch

    try:
        vector = torch.as_tensor(value, dtype=torch.float32, device="cpu")
    except (TypeError, ValueError, RuntimeError) as error:
        raise InputTypeError(f"is not a vector of numbers ({error})", field=field) from error
    if vector.dim() != 1:
        raise InputError(f"is not a flat vector of numbers (its shape is {tuple(vector.shape)})", field=field)
    if vector.numel() == 0:
        raise InputError("is an empty vector", field=field)
    return vector
