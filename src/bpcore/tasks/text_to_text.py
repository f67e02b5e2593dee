"""What the generative text tasks share: text-to-text examples and the AdaFactor default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bpcore.batching import Example
from bpcore.schemas import TextToTextParams
from bpcore.tasks.base import LOSS_FROM_MODEL, Task, Variant


def text_to_text_examples(data: TextToTextParams, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example(({"input": source, "output": target, **options},))
        for source, target in zip(data.input_text, data.output_text)
    ]


class TextToTextTask(Task):
    """Base of the tasks whose model generates text and computes its own loss."""

    variants = {"text_to_text": Variant(TextToTextParams, text_to_text_examples, LOSS_FROM_MODEL)}

    def configure_optimizers(self) -> Any:
        """AdaFactor, learning rate 1e-3."""
        import torch

        return torch.optim.Adafactor(self.model.parameters(), lr=1e-3)
