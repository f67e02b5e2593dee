"""Emotion detection: the emotion a text expresses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.contracts import CONTRACTS
from bpcore.schemas import TextInput
from bpcore.tasknames import EMOTION
from bpcore.tasks.base import (
    Task,
    TrainingOptions,
    ValidationSplit,
    as_batch,
    finetune_arguments,
    is_text,
)
from bpcore.training.options import finetune_signature


class Emotion(Task):
    """Detect the emotion of a text.

    Example::

        emotion = bpcore.Emotion()
        emotion("I really like what you did there")      # "approval"
        emotion.finetune({"input_text": [...], "output_text": ["positive", ...]})

    Finetuning options: ``max_input_length`` (256), ``max_output_length`` (32).
    """

    contract = CONTRACTS[EMOTION]

    def __call__(self, text: str | list[str]) -> Any:
        """An emotion string for a text, a list of them for a list."""
        texts, single = as_batch(text, is_text, "input.text")
        return self._infer(TextInput, {"text": texts}, single)

    @finetune_signature
    def finetune(
        self,
        params: Mapping[str, Any] | None,
        validation_split: ValidationSplit = 0.15,
        max_input_length: int = 256,
        max_output_length: int = 32,
        **options: Unpack[TrainingOptions],
    ) -> History:
        """Finetune on ``{"input_text", "output_text"}`` (texts and their emotions); see :meth:`Task._finetune`.

        ``max_input_length`` / ``max_output_length``: tokens kept of the text and the emotion.

        ``params`` holds that data; ``validation_split`` is the fraction held out to validate on,
        or ``(train_indices, val_indices)``; the other options are the loop's (``epochs``,
        ``batch_size``, ...: ``bpcore.TrainingOptions``).
        """
        return self._finetune(**finetune_arguments(locals()))
