"""The one place finetuning data becomes batches.

An :class:`Example` holds one or more *views* (each a ``params`` dict for the model's
``process_batch``: one for text-to-text, two for a cosine-similarity pair) and a target.
A batch runs every view of every example through the model in a single call: the model
sees ``views × batch_size`` items, first all first views, then all second views.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import torch

# Tasks build examples at import-light time; torch is imported only when batches are made.


@attrs.frozen
class Example:
    views: tuple[Mapping[str, Any], ...]
    target: Any = None


class ExampleDataset:
    """Runs the model's ``process_batch`` on each view when an example is read."""

    def __init__(self, examples: Sequence[Example], process: Callable[[Mapping[str, Any]], Any]):
        self.examples = examples
        self.process = process

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[tuple[Any, ...], Any]:
        example = self.examples[index]
        return tuple(self.process(view) for view in example.views), example.target


class Collator:
    """Batches processed examples with the model's ``collate_batch`` (or torch's default)."""

    def __init__(self, collate_inputs: Callable[[list[Any]], Any] | None = None):
        self.collate_inputs = collate_inputs

    def __call__(self, items: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
        import torch
        from torch.utils.data import default_collate

        views = len(items[0][0])
        flat = [processed[view] for view in range(views) for processed, _ in items]
        targets = [target for _, target in items]
        return {
            "inputs": (self.collate_inputs or default_collate)(flat),
            "targets": None if targets[0] is None else torch.as_tensor(targets),
            "views": views,
        }


def split_views(outputs: torch.Tensor, views: int) -> tuple[torch.Tensor, ...]:
    """Undo the view flattening of :class:`Collator` on the model's outputs."""
    return tuple(outputs.chunk(views, dim=0))
