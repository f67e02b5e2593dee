"""Emotion detection: the emotion a text expresses."""

from __future__ import annotations

from typing import Any

from bpcore.schemas import TextInput
from bpcore.tasknames import EMOTION
from bpcore.tasks.base import as_batch, is_text
from bpcore.tasks.text_to_text import TextToTextTask


class Emotion(TextToTextTask):
    """Detect the emotion of a text.

    Example::

        emotion = bpcore.Emotion()
        emotion("I really like what you did there")      # "approval"
        emotion.finetune({"input_text": [...], "output_text": ["positive", ...]})

    Finetuning options: ``max_input_length`` (256), ``max_output_length`` (32).
    """

    task = EMOTION
    finetune_options = {"max_input_length": 256, "max_output_length": 32}

    def __call__(self, text: str | list[str]) -> Any:
        """An emotion string for a text, a list of them for a list."""
        texts, single = as_batch(text, is_text)
        return self._infer(TextInput, {"text": texts}, single)
