"""Zero-shot label embeddings, built with open_clip's own helper and cached per label list."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from open_clip.zero_shot_classifier import build_zero_shot_classifier

#: The prompt a label is put in before its text is encoded (CLIP's usual single prompt).
DEFAULT_LABEL_TEMPLATE = "a photo of a {}."
#: Labels encoded per forward pass of the text tower.
LABELS_PER_BATCH = 128


def label_embeddings(
    model: torch.nn.Module,
    tokenizer: Callable[[list[str]], torch.Tensor],
    labels: Sequence[str],
    template: str,
    device: torch.device,
) -> torch.Tensor:
    """The ``[dim, len(labels)]`` normalised text embeddings of the labels' prompts (no gradients)."""
    return build_zero_shot_classifier(
        model,
        tokenizer,
        classnames=list(labels),
        templates=[template],
        num_classes_per_batch=LABELS_PER_BATCH,
        device=device,
    )


class LabelCache:
    """The label embeddings of the last few distinct label lists, so a repeated list is encoded once.

    Entries belong to the current weights: the model clears the cache whenever they change
    (finetuning, loading a state dict).

    Example::

        cache = LabelCache(size=8)
        weights = cache.get(("cat", "dog"), lambda: label_embeddings(...))
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, ...], torch.Tensor] = OrderedDict()

    def get(self, labels: Sequence[str], build: Callable[[], torch.Tensor]) -> torch.Tensor:
        key = tuple(labels)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = build()
        self._entries[key] = value
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
