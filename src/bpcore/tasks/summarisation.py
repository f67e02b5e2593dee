"""Summarisation: the key information of a longer text."""

from __future__ import annotations

from typing import Any

from bpcore.schemas import TextInput
from bpcore.tasknames import SUMMARISATION
from bpcore.tasks.base import as_batch, is_text
from bpcore.tasks.text_to_text import TextToTextTask


class Summarisation(TextToTextTask):
    """Summarise texts.

    Example::

        summarisation = bpcore.Summarisation()
        summarisation("This is a long document that contains plenty of words")

    Finetuning options: ``max_input_length`` (512), ``max_output_length`` (128).
    """

    task = SUMMARISATION
    finetune_options = {"max_input_length": 512, "max_output_length": 128}

    def __call__(self, text: str | list[str]) -> Any:
        """A summary for a text, a list of them for a list."""
        texts, single = as_batch(text, is_text)
        return self._infer(TextInput, {"text": texts}, single)
