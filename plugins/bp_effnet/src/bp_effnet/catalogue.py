"""The EfficientNet models bp-effnet offers: plain data, so listing them imports neither torch nor timm.

The spec's names ``efficientnet-b0`` … ``efficientnet-b7`` map to timm's ports of Google's original
TensorFlow weights trained with AutoAugment (``tf_efficientnet_bN.aa_in1k``): the same checkpoints
Backprop 0.1.1 used (through ``efficientnet_pytorch``), and the only timm family with ImageNet
weights for every size from B0 to B7.
"""

from __future__ import annotations

from typing import Any

#: Spec name → timm model name (architecture and pretrained tag).
TIMM_NAMES: dict[str, str] = {
    f"efficientnet-b{size}": f"tf_efficientnet_b{size}.aa_in1k" for size in range(8)
}

#: Parameters (with the 1,000-class ImageNet head), input resolution and ImageNet-1k top-1 accuracy
#: (%, at that resolution) from timm's ``results/results-imagenet.csv``.
_FACTS: dict[str, tuple[int, int, float]] = {
    "efficientnet-b0": (5_288_548, 224, 76.882),
    "efficientnet-b1": (7_794_184, 240, 78.840),
    "efficientnet-b2": (9_109_994, 260, 80.074),
    "efficientnet-b3": (12_233_232, 300, 81.648),
    "efficientnet-b4": (19_341_616, 380, 83.040),
    "efficientnet-b5": (30_389_784, 456, 83.696),
    "efficientnet-b6": (43_040_704, 528, 84.124),
    "efficientnet-b7": (66_347_960, 600, 84.424),
}

CREDITS: list[dict[str, str]] = [
    {
        "name": "EfficientNet (Tan & Le, 2019)",
        "url": "https://arxiv.org/abs/1905.11946",
    },
    {
        "name": "Google TensorFlow TPU EfficientNet weights",
        "url": "https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet",
    },
    {"name": "timm (PyTorch Image Models)", "url": "https://github.com/huggingface/pytorch-image-models"},
]


def description(name: str) -> str:
    size = name.rsplit("-", 1)[-1].upper()
    return (
        f"EfficientNet-{size} trained on ImageNet (1,000 classes); finetunable on your own labels, "
        "single- or multi-label. Needs the network once to fetch its weights."
    )


def details(name: str) -> dict[str, Any]:
    parameters, resolution, top1 = _FACTS[name]
    return {
        "num_parameters": parameters,
        "input_resolution": resolution,
        "imagenet_top1": top1,
        "num_classes": 1000,
        "timm_model": TIMM_NAMES[name],
        "credits": [dict(credit) for credit in CREDITS],
    }
