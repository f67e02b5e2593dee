"""Text classification: zero-shot with labels, or finetuned on the user's own labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.contracts import CONTRACTS
from bpcore.schemas import TextClassificationInput
from bpcore.tasknames import TEXT_CLASSIFICATION
from bpcore.tasks.base import (
    Task,
    TrainingOptions,
    ValidationSplit,
    as_batch,
    finetune_arguments,
    is_text,
    per_item_labels,
)
from bpcore.training.options import finetune_signature


class TextClassification(Task):
    """Assign probabilities to labels for texts.

    Example::

        tc = bpcore.TextClassification()
        tc("I am mad because my product broke.", ["product issue", "nature"])
        # {"product issue": 0.98, "nature": 0.02}

        tc.finetune({"texts": [...], "labels": ["Politics", "Science", ...]})
        tc("A new bill passed today")          # probabilities over the finetuned labels

    Variants: ``single_label`` (the model's own loss) and ``multi_label`` (labels as lists,
    a sigmoid per label). Finetuning options: ``max_length`` (default 128).
    """

    contract = CONTRACTS[TEXT_CLASSIFICATION]

    def __call__(
        self,
        text: str | list[str],
        labels: list[str] | list[list[str]] | None = None,
        top_k: int = 0,
        multi_label: bool = False,
    ) -> Any:
        """Probabilities per label: ``{label: p}`` for a text, a list of them for a list.

        ``labels`` (zero-shot) is one list for every text or one list per text; leave it out
        for a model finetuned on its own labels. ``top_k`` keeps the k most likely (0: all).
        ``multi_label=True`` scores each label on its own (probabilities need not sum to 1),
        as when a text can be about several labels at once.
        """
        texts, single = as_batch(text, is_text, "input.text")
        data = {
            "text": texts,
            "labels": per_item_labels(labels, len(texts)),
            "top_k": top_k,
            "multi_label": multi_label,
        }
        return self._infer(TextClassificationInput, data, single)

    @finetune_signature
    def finetune(
        self,
        params: Mapping[str, Any] | None,
        validation_split: ValidationSplit = 0.15,
        max_length: int = 128,
        variant: str = "single_label",
        **options: Unpack[TrainingOptions],
    ) -> History:
        """Finetune on ``{"texts", "labels"}``; see :meth:`Task._finetune`.

        ``variant``: ``"single_label"`` (a label per text) or ``"multi_label"`` (a list of labels
        per text). ``max_length``: tokens kept of a text.

        ``params`` holds that data; ``validation_split`` is the fraction held out to validate on,
        or ``(train_indices, val_indices)``; the other options are the loop's (``epochs``,
        ``batch_size``, ...: ``bpcore.TrainingOptions``).
        """
        return self._finetune(**finetune_arguments(locals()))
