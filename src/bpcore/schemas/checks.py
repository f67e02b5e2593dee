"""Checks that span fields: parallel lists of equal length, non-empty data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bpcore.errors import InputError


def check_parallel(obj: Any, root: str, fields: Sequence[str], what: str = "items") -> int:
    """All ``fields`` hold lists of one non-zero length; return it."""
    lengths = {field: len(getattr(obj, field)) for field in fields if getattr(obj, field) is not None}
    first_field, first_length = next(iter(lengths.items()))
    if first_length == 0:
        raise InputError(f"no {what}: the list is empty", field=f"{root}.{first_field}")
    for field, length in lengths.items():
        if length != first_length:
            raise InputError(
                f"has {length} entries but {root}.{first_field} has {first_length}; they must match 1:1",
                field=f"{root}.{field}",
            )
    return first_length


def check_non_blank(obj: Any, root: str, fields: Sequence[str]) -> None:
    for field in fields:
        for index, text in enumerate(getattr(obj, field)):
            if not text.strip():
                raise InputError("is empty", field=f"{root}.{field}[{index}]")


def check_scores(scores: Sequence[float], root: str, field: str) -> None:
    for index, score in enumerate(scores):
        if not -1.0 <= score <= 1.0:
            raise InputError(
                f"{score} is not a cosine similarity between -1 and 1", field=f"{root}.{field}[{index}]"
            )


def check_groups(groups: Sequence[Any], root: str, field: str = "groups") -> None:
    counts: dict[Any, int] = {}
    for group in groups:
        counts[group] = counts.get(group, 0) + 1
    if len(counts) < 2:
        raise InputError("triplet finetuning needs at least two different groups", field=f"{root}.{field}")
    if max(counts.values()) < 2:
        raise InputError(
            "triplet finetuning needs a group with at least two members", field=f"{root}.{field}"
        )
