"""The helpers of spec chapter 8 (``backprop.utils``), under the spec's module names.

- :mod:`.functions`: :func:`cosine_similarity`;
- :mod:`.helpers`: :func:`base64_to_img`, :func:`img_to_base64`, :func:`path_to_img`;
- :mod:`.load` and :mod:`.save`: :func:`load` and :func:`save`;
- :mod:`.losses.triplet_loss`: ``TripletLoss``, ``TripletSemiHardLoss``, ``pairwise_distance_torch``;
- :mod:`.samplers`: ``SameGroupSampler``; :mod:`.download`: ``download``;
- :mod:`.datasets`: the finetuning datasets (``TextGroupDataset`` ...), also importable from here.

Importing this package imports no torch: the dataset classes load it on first access.

Example::

    from bpcore.utils import cosine_similarity
    from bpcore.utils.losses.triplet_loss import TripletLoss
"""

from __future__ import annotations

from bpcore.functions import cosine_similarity
from bpcore.images import base64_to_img, img_to_base64, load_image, path_to_img
from bpcore.plugins import lazy_exports
from bpcore.saving import load, save

# The dataset classes build on torch.utils.data, so they load on first access.
_DATASETS = [
    "ImageGroupDataset",
    "ImagePairDataset",
    "ImageTextGroupDataset",
    "ImageTextPairDataset",
    "MultiLabelImageClassificationDataset",
    "SingleLabelImageClassificationDataset",
    "SingleLabelTextClassificationDataset",
    "TextGroupDataset",
    "TextPairDataset",
    "TextToTextDataset",
]

__all__ = [
    *_DATASETS,
    "base64_to_img",
    "cosine_similarity",
    "img_to_base64",
    "load",
    "load_image",
    "path_to_img",
    "save",
]

__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(_DATASETS, "bpcore.utils.datasets"))
