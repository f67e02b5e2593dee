"""Image-text vectorisation: one normalised vector for an image and its text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.contracts import CONTRACTS
from bpcore.schemas import ImageTextInput
from bpcore.tasknames import IMAGE_TEXT_VECTORISATION
from bpcore.tasks.base import (
    Task,
    TrainingOptions,
    ValidationSplit,
    as_batch,
    finetune_arguments,
    is_text,
)
from bpcore.tasks.image_vectorisation import check_images
from bpcore.training.options import finetune_signature


class ImageTextVectorisation(Task):
    """Turn image-text pairs into single normalised vectors (e.g. for product search).

    Example::

        itv = bpcore.ImageTextVectorisation()
        itv(image="images/iphone.jpg", text="iPhone 12 128GB")
    """

    contract = CONTRACTS[IMAGE_TEXT_VECTORISATION]

    def __call__(self, image: Any, text: str | list[str], return_tensor: bool = False) -> Any:
        """Vectorise an image with its text, or lists of both in the same order."""
        texts, single = as_batch(text, is_text, "input.text")
        images = [image] if single else image
        return self._infer(
            ImageTextInput, {"image": images, "text": texts}, single, return_tensor=return_tensor
        )

    @classmethod
    def _check_data(cls, data: Any) -> None:
        check_images(data, ("images", "imgs1", "imgs2"))

    @finetune_signature
    def finetune(
        self,
        params: Mapping[str, Any] | None,
        validation_split: ValidationSplit = 0.15,
        variant: str = "triplet",
        **options: Unpack[TrainingOptions],
    ) -> History:
        """Finetune on groups or pairs of image-text pairs; see :meth:`Task._finetune`.

        ``variant``: ``"triplet"`` (``{"images", "texts", "groups"}``) or ``"cosine_similarity"``
        (``{"imgs1", "imgs2", "texts1", "texts2", "similarity_scores"}``).

        ``params`` holds that data; ``validation_split`` is the fraction held out to validate on,
        or ``(train_indices, val_indices)``; the other options are the loop's (``epochs``,
        ``batch_size``, ...: ``bpcore.TrainingOptions``).
        """
        return self._finetune(**finetune_arguments(locals()))
