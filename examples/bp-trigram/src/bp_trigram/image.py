"""TinyConvModel: image vectorisation and classification with a two-layer convolutional net."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from bp_trigram.heads import LabelHead
from bpcore.plugins import BaseModel, InputError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.plugins import ModelIdentity


TASKS = ["image-vectorisation", "image-classification"]
#: The largest side images are resized to (pixels).
MAX_IMAGE_SIZE = 1024


def to_pixels(image: Any, size: int) -> torch.Tensor:
    """An image (a task hands over RGB PIL images; a direct call may pass a path) as a ``3×size×size`` tensor in [0, 1]."""
    resized = image.resize((size, size))
    raw = torch.frombuffer(bytearray(resized.tobytes()), dtype=torch.uint8)
    return raw.reshape(size, size, 3).permute(2, 0, 1).float() / 255.0


class TinyConvModel(BaseModel):
    """Two convolutions and a projection: vectors for images, and a head for the user's labels.

    It has no zero-shot classification: finetune it on labelled images first.

    Example::

        import bpcore
        from bp_trigram import TinyConvModel

        ic = bpcore.ImageClassification(TinyConvModel())
        ic.finetune({"images": ["cat1.png", "dog1.png"], "labels": ["cat", "dog"]})
        ic("cat2.png")                      # {"cat": 0.9, "dog": 0.1}
    """

    optimal_batch_size = 16
    default_tasks = TASKS

    def __init__(
        self,
        dim: int = 32,
        image_size: int = 32,
        **identity: Unpack[ModelIdentity],
    ):
        # The size comes back from a saved config, which anyone may have edited: bound it here, where
        # it is used (a huge size would fail only at the first call, out of memory).
        if (
            isinstance(image_size, bool)
            or not isinstance(image_size, int)
            or not 4 <= image_size <= MAX_IMAGE_SIZE
        ):
            raise InputError(
                f"must be an integer from 4 to {MAX_IMAGE_SIZE}, got {image_size!r}", field="image_size"
            )
        super().__init__(None, **identity)
        self.image_size = image_size
        self.conv1 = torch.nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.dropout = torch.nn.Dropout(0.1)
        self.project = torch.nn.Linear(16, dim)
        self.head = LabelHead(dim)
        self.to(self.device)

    def vectorise(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden = F.max_pool2d(F.relu(self.conv1(pixels.to(self.device))), 2)
        hidden = F.relu(self.conv2(hidden)).mean(dim=(2, 3))
        return self.project(self.dropout(hidden))

    # -- inference: images arrive decoded, as RGB PIL images -----------------------------------
    def __call__(self, task_input: Mapping[str, Any], task: str, return_tensor: bool = False) -> Any:
        vectors = self.vectorise(
            torch.stack([to_pixels(image, self.image_size) for image in task_input["image"]])
        )
        if task == "image-classification":
            return self.head.answer(vectors, task_input)
        return vectors if return_tensor else vectors.tolist()

    # -- finetuning ---------------------------------------------------------------------------
    def pre_finetuning(
        self, labels: Mapping[int, str] | None = None, multi_label: bool = False, **_: Any
    ) -> None:
        if labels is not None:  # image-classification tells the labels; image-vectorisation nothing
            self.head.reset(labels, multi_label)
            self.head.to(self.device)

    def process_batch(self, params: Mapping[str, Any], task: str) -> torch.Tensor:
        return to_pixels(params["image"], self.image_size)

    def training_step(self, batch: torch.Tensor, task: str) -> torch.Tensor:
        vectors = self.vectorise(batch)
        # Vectors for the core's triplet or cosine loss; logits for its cross-entropy or sigmoid loss.
        return self.head.logits(vectors) if task == "image-classification" else vectors

    # -- saving -------------------------------------------------------------------------------
    def extra_config(self) -> dict[str, Any]:
        return self.head.config()

    def apply_extra_config(self, config: Mapping[str, Any]) -> None:
        self.head.apply_config(config)
        self.head.to(self.device)
