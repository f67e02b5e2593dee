"""Image classification: zero-shot with labels, or finetuned single- or multi-label."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.contracts import CONTRACTS
from bpcore.errors import InputError
from bpcore.schemas import ImageClassificationInput
from bpcore.tasknames import IMAGE_CLASSIFICATION
from bpcore.tasks.base import (
    Task,
    TrainingOptions,
    ValidationSplit,
    as_batch,
    finetune_arguments,
    is_image,
    per_item_labels,
)
from bpcore.tasks.image_vectorisation import check_images
from bpcore.training.options import finetune_signature


class ImageClassification(Task):
    """Assign probabilities to labels for images (paths, base64 strings or PIL images).

    Example::

        ic = bpcore.ImageClassification()
        ic("images/dog.png", ["cat", "dog"])        # {"cat": 0.01, "dog": 0.99}
        ic.finetune({"images": [...], "labels": ["beagle", "dachshund", ...]})

    The model's ``training_step`` returns logits per label; variants ``single_label``
    (cross-entropy) and ``multi_label`` (labels as lists, a sigmoid per label).
    """

    contract = CONTRACTS[IMAGE_CLASSIFICATION]

    def __call__(self, image: Any, labels: list[str] | list[list[str]] | None = None, top_k: int = 0) -> Any:
        """Probabilities per label: ``{label: p}`` for an image, a list of them for a list."""
        images, single = as_batch(image, is_image, "input.image")
        data = {"image": images, "labels": per_item_labels(labels, len(images)), "top_k": top_k}
        return self._infer(ImageClassificationInput, data, single)

    @classmethod
    def _prepare_params(cls, params: Any) -> Any:
        # A folder holding one sub-folder of images per label: the common layout of image data.
        if isinstance(params, Mapping) and isinstance(params.get("images"), (str, os.PathLike)):
            if "labels" in params:
                raise InputError(
                    "give either a folder of label sub-folders as images, or images with labels",
                    field="params.labels",
                )
            from bpcore.folders import images_and_labels

            images, labels = images_and_labels(params["images"], field="params.images")
            return {**params, "images": images, "labels": labels}
        return params

    @classmethod
    def _check_data(cls, data: Any) -> None:
        check_images(data, ("images",))

    @finetune_signature
    def finetune(
        self,
        params: Mapping[str, Any] | None,
        validation_split: ValidationSplit = 0.15,
        variant: str = "single_label",
        **options: Unpack[TrainingOptions],
    ) -> History:
        """Finetune on ``{"images", "labels"}``, or ``{"images": "folder"}`` with a sub-folder per label.

        See :meth:`Task._finetune`.

        ``variant``: ``"single_label"`` (a label per image) or ``"multi_label"`` (a list per image).

        ``params`` holds that data; ``validation_split`` is the fraction held out to validate on,
        or ``(train_indices, val_indices)``; the other options are the loop's (``epochs``,
        ``batch_size``, ...: ``bpcore.TrainingOptions``).
        """
        return self._finetune(**finetune_arguments(locals()))
