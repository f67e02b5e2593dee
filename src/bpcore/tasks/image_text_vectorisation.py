"""Image-text vectorisation: one normalised vector for an image and its text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bpcore.batching import Example
from bpcore.schemas import ImageTextGroupParams, ImageTextInput, ImageTextPairParams
from bpcore.tasknames import IMAGE_TEXT_VECTORISATION
from bpcore.tasks.base import LOSS_COSINE, LOSS_TRIPLET, Task, Variant, as_batch, group_index, is_text
from bpcore.tasks.image_vectorisation import check_images


def group_examples(data: ImageTextGroupParams, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example(({"image": image, "text": text},), group)
        for image, text, group in zip(data.images, data.texts, group_index(data.groups))
    ]


def pair_examples(data: ImageTextPairParams, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example(({"image": image1, "text": text1}, {"image": image2, "text": text2}), score)
        for image1, image2, text1, text2, score in zip(
            data.imgs1, data.imgs2, data.texts1, data.texts2, data.similarity_scores
        )
    ]


class ImageTextVectorisation(Task):
    """Turn image-text pairs into single normalised vectors (e.g. for product search).

    Example::

        itv = bpcore.ImageTextVectorisation()
        itv(image="images/iphone.jpg", text="iPhone 12 128GB")
    """

    task = IMAGE_TEXT_VECTORISATION
    variants = {
        "triplet": Variant(ImageTextGroupParams, group_examples, LOSS_TRIPLET, grouped=True),
        "cosine_similarity": Variant(ImageTextPairParams, pair_examples, LOSS_COSINE),
    }

    def __call__(self, image: Any, text: str | list[str], return_tensor: bool = False) -> Any:
        """Vectorise an image with its text, or lists of both in the same order."""
        texts, single = as_batch(text, is_text)
        images = [image] if single else image
        return self._infer(
            ImageTextInput, {"image": images, "text": texts}, single, return_tensor=return_tensor
        )

    def _check_data(self, data: Any) -> None:
        check_images(data, ("images", "imgs1", "imgs2"))
