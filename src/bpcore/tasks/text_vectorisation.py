"""Text vectorisation: text to a vector, finetuned with cosine-similarity pairs or triplets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.contracts import CONTRACTS
from bpcore.schemas import TextInput
from bpcore.tasknames import TEXT_VECTORISATION
from bpcore.tasks.base import (
    Task,
    TrainingOptions,
    ValidationSplit,
    as_batch,
    finetune_arguments,
    is_text,
)
from bpcore.training.options import finetune_signature


class TextVectorisation(Task):
    """Turn text into vectors that can be compared numerically.

    Example::

        tv = bpcore.TextVectorisation()
        tv("iPhone 12 128GB")                      # [0.0123, -0.0456, ...]
        tv.finetune({"texts1": [...], "texts2": [...], "similarity_scores": [1.0, 0.0]})
        tv.finetune({"texts": [...], "groups": [0, 0, 1]}, variant="triplet")

    Finetuning options: ``max_length`` (maximum tokens of a text).
    """

    contract = CONTRACTS[TEXT_VECTORISATION]

    def __call__(self, text: str | list[str], return_tensor: bool = False) -> Any:
        """Vectorise a text (a vector) or a list of texts (a list of vectors)."""
        texts, single = as_batch(text, is_text, "input.text")
        return self._infer(TextInput, {"text": texts}, single, return_tensor=return_tensor)

    @finetune_signature
    def finetune(
        self,
        params: Mapping[str, Any] | None,
        validation_split: ValidationSplit = 0.15,
        max_length: int | None = None,
        variant: str = "cosine_similarity",
        **options: Unpack[TrainingOptions],
    ) -> History:
        """Finetune on pairs or groups of texts; see :meth:`Task._finetune`.

        ``variant``: ``"cosine_similarity"`` (``{"texts1", "texts2", "similarity_scores"}``) or
        ``"triplet"`` (``{"texts", "groups"}``). ``max_length``: tokens kept of a text (None: the
        model's limit).

        ``params`` holds that data; ``validation_split`` is the fraction held out to validate on,
        or ``(train_indices, val_indices)``; the other options are the loop's (``epochs``,
        ``batch_size``, ...: ``bpcore.TrainingOptions``).
        """
        return self._finetune(**finetune_arguments(locals()))
