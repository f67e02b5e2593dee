"""Image vectorisation: an image to a vector, finetuned with triplets or cosine-similarity pairs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.contracts import CONTRACTS
from bpcore.images import check_image
from bpcore.schemas import ImageInput
from bpcore.tasknames import IMAGE_VECTORISATION
from bpcore.tasks.base import (
    Task,
    TrainingOptions,
    ValidationSplit,
    as_batch,
    finetune_arguments,
    is_image,
)
from bpcore.training.options import finetune_signature


def check_images(data: Any, fields: tuple[str, ...]) -> None:
    for field in fields:
        for index, image in enumerate(getattr(data, field, None) or []):
            check_image(image, f"params.{field}[{index}]")


class ImageVectorisation(Task):
    """Turn images (paths, base64 strings or PIL images) into vectors.

    Example::

        iv = bpcore.ImageVectorisation()
        iv("images/dog.png")
        iv.finetune({"images": [...], "groups": [0, 1, 0, 2]})               # triplet
        iv.finetune({"imgs1": [...], "imgs2": [...], "similarity_scores": [1.0, 0.0]},
                    variant="cosine_similarity")

    The model's ``process_batch`` receives ``{"image": <path, base64 or PIL image>}``; decode
    it with :func:`bpcore.images.load_image`.
    """

    contract = CONTRACTS[IMAGE_VECTORISATION]

    def __call__(self, image: Any, return_tensor: bool = False) -> Any:
        """Vectorise an image (a vector) or a list of images (a list of vectors)."""
        images, single = as_batch(image, is_image, "input.image")
        return self._infer(ImageInput, {"image": images}, single, return_tensor=return_tensor)

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
        """Finetune on groups or pairs of images; see :meth:`Task._finetune`.

        ``variant``: ``"triplet"`` (``{"images", "groups"}``) or ``"cosine_similarity"``
        (``{"imgs1", "imgs2", "similarity_scores"}``).

        ``params`` holds that data; ``validation_split`` is the fraction held out to validate on,
        or ``(train_indices, val_indices)``; the other options are the loop's (``epochs``,
        ``batch_size``, ...: ``bpcore.TrainingOptions``).
        """
        return self._finetune(**finetune_arguments(locals()))
