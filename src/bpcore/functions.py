"""Small numeric helpers users reach for next to the tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def cosine_similarity(
    vec1: Sequence[float] | Any, vec2: Sequence[float] | Sequence[Sequence[float]] | Any
) -> float | list[float]:
    """Cosine similarity of ``vec1`` with one vector (a float) or with each of several (a list).

    Example::

        bpcore.cosine_similarity(vec1, vec2)            # 0.8982
        bpcore.cosine_similarity(vec1, [vec2, vec3])    # [0.8982, 0.3421]
    """
    import torch

    first = torch.as_tensor(vec1, dtype=torch.float32)
    if isinstance(vec2, (list, tuple)) and vec2 and not isinstance(vec2[0], (int, float)):
        second = torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in vec2])
    else:
        second = torch.as_tensor(vec2, dtype=torch.float32)
    single = second.dim() == 1
    similarities = torch.nn.functional.cosine_similarity(
        first.reshape(1, -1), second.reshape(-1, first.numel())
    )
    return float(similarities[0]) if single else similarities.tolist()
