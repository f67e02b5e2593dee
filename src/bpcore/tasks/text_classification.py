"""Text classification: zero-shot with labels, or finetuned on the user's own labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.batching import Example
from bpcore.schemas import (
    MultiLabelTextClassificationParams,
    TextClassificationInput,
    TextClassificationParams,
)
from bpcore.tasknames import TEXT_CLASSIFICATION
from bpcore.tasks.base import (
    LOSS_BINARY_CROSS_ENTROPY,
    LOSS_FROM_MODEL,
    Task,
    TrainingOptions,
    ValidationSplit,
    Variant,
    adamw,
    as_batch,
    finetune_arguments,
    is_text,
    label_index,
    per_item_labels,
)
from bpcore.training.options import finetune_signature


def labels_of(data: Any) -> dict[str, int]:
    """Label → index for single-label (a label per item) or multi-label (a list per item) data."""
    flat = [label for item in data.labels for label in ([item] if isinstance(item, str) else item)]
    return label_index(flat)


def multi_hot(item_labels: list[str], index: Mapping[str, int]) -> list[float]:
    row = [0.0] * len(index)
    for label in item_labels:
        row[index[label]] = 1.0
    return row


def single_label_examples(data: TextClassificationParams, options: Mapping[str, Any]) -> list[Example]:
    index = labels_of(data)
    return [
        Example(
            ({"inputs": text, "labels": label, "class_to_idx": index, "max_length": options["max_length"]},)
        )
        for text, label in zip(data.texts, data.labels)
    ]


def multi_label_examples(
    data: MultiLabelTextClassificationParams, options: Mapping[str, Any]
) -> list[Example]:
    index = labels_of(data)
    return [
        Example(
            ({"inputs": text, "class_to_idx": index, "max_length": options["max_length"]},),
            multi_hot(labels, index),
        )
        for text, labels in zip(data.texts, data.labels)
    ]


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

    task = TEXT_CLASSIFICATION
    variants = {
        "single_label": Variant(TextClassificationParams, single_label_examples, LOSS_FROM_MODEL),
        "multi_label": Variant(
            MultiLabelTextClassificationParams, multi_label_examples, LOSS_BINARY_CROSS_ENTROPY
        ),
    }

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

    def _pre_finetuning_arguments(self, data: Any, variant: str) -> dict[str, Any]:
        index = labels_of(data)
        arguments: dict[str, Any] = {"labels": {i: label for label, i in index.items()}}
        if variant == "multi_label":
            arguments["multi_label"] = True
        return arguments

    def configure_optimizers(self) -> Any:
        """AdamW, learning rate 2e-5."""
        return adamw(self.model.parameters(), lr=2e-5)

    @finetune_signature
    def finetune(
        self,
        params: Mapping[str, Any],
        validation_split: ValidationSplit = 0.15,
        max_length: int = 128,
        variant: str = "single_label",
        **options: Unpack[TrainingOptions],
    ) -> History:
        """Finetune on ``{"texts", "labels"}``; see :meth:`Task._finetune`.

        ``variant``: ``"single_label"`` (a label per text) or ``"multi_label"`` (a list of labels
        per text). ``max_length``: tokens kept of a text.
        """
        return self._finetune(**finetune_arguments(locals()))
