"""Text generation: continue a text, or learn any text-to-text mapping by finetuning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.contracts import CONTRACTS
from bpcore.schemas import TextGenerationInput
from bpcore.tasknames import TEXT_GENERATION
from bpcore.tasks.base import (
    Task,
    TrainingOptions,
    ValidationSplit,
    as_batch,
    finetune_arguments,
    is_text,
)
from bpcore.training.options import finetune_signature


class TextGeneration(Task):
    """Generate text from a prompt.

    Example::

        tg = bpcore.TextGeneration()
        tg("Geralt knew the signs, the monster was a", min_length=20, max_length=50, temperature=0.7)
        tg.finetune({"input_text": ["I liked it!", "Meh."], "output_text": ["positive", "negative"]})

    Finetuning options: ``max_input_length`` (128), ``max_output_length`` (32).
    """

    contract = CONTRACTS[TEXT_GENERATION]

    def __call__(
        self,
        text: str | list[str],
        min_length: int | None = None,
        max_length: int | None = None,
        temperature: float | None = None,
        top_k: float | None = None,
        top_p: float | None = None,
        repetition_penalty: float | None = None,
        length_penalty: float | None = None,
        num_beams: int | None = None,
        num_generations: int | None = None,
        do_sample: bool | None = None,
    ) -> Any:
        """Generated text for a prompt, a list for a list of prompts.

        With ``num_generations`` above 1, each prompt gets a list of generations. Options left
        as ``None`` use the model's defaults.
        """
        texts, single = as_batch(text, is_text, "input.text")
        options = {
            "min_length": min_length,
            "max_length": max_length,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "repetition_penalty": repetition_penalty,
            "length_penalty": length_penalty,
            "num_beams": num_beams,
            "num_generations": num_generations,
            "do_sample": do_sample,
        }
        data = {"text": texts, **{key: value for key, value in options.items() if value is not None}}
        return self._infer(TextGenerationInput, data, single)

    @finetune_signature
    def finetune(
        self,
        params: Mapping[str, Any] | None,
        validation_split: ValidationSplit = 0.15,
        max_input_length: int = 128,
        max_output_length: int = 32,
        **options: Unpack[TrainingOptions],
    ) -> History:
        """Finetune on ``{"input_text", "output_text"}`` (prompts and completions); see :meth:`Task._finetune`.

        ``max_input_length`` / ``max_output_length``: tokens kept of the prompt and the completion.

        ``params`` holds that data; ``validation_split`` is the fraction held out to validate on,
        or ``(train_indices, val_indices)``; the other options are the loop's (``epochs``,
        ``batch_size``, ...: ``bpcore.TrainingOptions``).
        """
        return self._finetune(**finetune_arguments(locals()))
