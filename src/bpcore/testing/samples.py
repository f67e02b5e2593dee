"""Small sample inputs and finetuning data for every task, used by the conformance checks.

Images are generated in memory: four visually distinct kinds (solid colours with a stripe
pattern of their own), so a tiny model can learn to tell them apart in a few steps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 50),
    "blue": (40, 50, 230),
    "yellow": (230, 220, 40),
}


def sample_image(kind: str, variant: int = 0, size: int = 32) -> Any:
    """A ``size``×``size`` RGB PIL image of one of :data:`COLOURS`, slightly different per ``variant``."""
    from PIL import Image, ImageDraw

    red, green, blue = COLOURS[kind]
    shade = 12 * variant
    image = Image.new("RGB", (size, size), (max(red - shade, 0), max(green - shade, 0), max(blue - shade, 0)))
    draw = ImageDraw.Draw(image)
    step = 4 + 2 * list(COLOURS).index(kind)
    for offset in range(variant % 3, size, step):
        draw.line([(offset, 0), (offset, size)], fill=(255, 255, 255))
    return image


TEXTS = [
    "The team won the football match in the last minute.",
    "Stocks fell sharply after the bank raised interest rates.",
    "The striker scored twice and the crowd cheered.",
    "Investors sold their shares as markets dropped.",
]
LABELS = ["sport", "finance"]
TEXT_LABELS = ["sport", "finance", "sport", "finance"]

QA_INPUT = {
    "question": ["Where does Sally live?", "What does Sally like?"],
    "context": ["Sally lives in London and likes tea.", "Sally lives in London and likes tea."],
}


def inputs(task: str) -> dict[str, Any]:
    """Keyword arguments of a batched call of ``task`` (two or more items)."""
    images = [sample_image(kind) for kind in COLOURS]
    return copy.deepcopy(
        {
            "qa": {"question": QA_INPUT["question"], "context": QA_INPUT["context"]},
            "text-classification": {"text": TEXTS, "labels": LABELS},
            "emotion": {"text": TEXTS},
            "summarisation": {"text": TEXTS},
            "text-generation": {"text": TEXTS[:3]},
            "text-vectorisation": {"text": TEXTS},
            "image-classification": {"image": images, "labels": list(COLOURS)},
            "image-vectorisation": {"image": images},
            "image-text-vectorisation": {"image": images, "text": TEXTS},
        }[task]
    )


def _grouped_images(per_group: int = 3) -> tuple[list[Any], list[int]]:
    images, groups = [], []
    for group, kind in enumerate(COLOURS):
        for variant in range(per_group):
            images.append(sample_image(kind, variant))
            groups.append(group)
    return images, groups


def finetune_data(task: str, variant: str) -> dict[str, Any]:
    """``params`` for a short finetune of ``task`` with ``variant``: small, clean and learnable."""
    images, groups = _grouped_images()
    texts = [f"{kind} {['thing', 'item', 'object'][i % 3]}" for kind in COLOURS for i in range(3)]
    outputs = ["yes", "no", "yes", "no"]
    data: Mapping[tuple[str, str], dict[str, Any]] = {
        ("qa", "qa"): {
            "questions": ["Where does Sally live?", "Where does Tom live?", "Who lives in Paris?"],
            "answers": ["London", "Paris", "Tom"],
            "contexts": ["Sally lives in London.", "Tom lives in Paris.", "Tom lives in Paris."],
        },
        **{
            (name, "text_to_text"): {"input_text": TEXTS, "output_text": outputs}
            for name in ("emotion", "summarisation", "text-generation")
        },
        ("text-classification", "single_label"): {"texts": TEXTS, "labels": TEXT_LABELS},
        ("text-classification", "multi_label"): {
            "texts": TEXTS,
            "labels": [["sport"], ["finance"], ["sport", "news"], ["finance", "news"]],
        },
        ("text-vectorisation", "cosine_similarity"): {
            "texts1": TEXTS[:2] + TEXTS[:2],
            "texts2": TEXTS[2:] + TEXTS[2:][::-1],
            "similarity_scores": [1.0, 1.0, 0.0, 0.0],
        },
        ("text-vectorisation", "triplet"): {"texts": TEXTS * 2, "groups": [0, 1, 0, 1, 0, 1, 0, 1]},
        ("image-classification", "single_label"): {
            "images": images,
            "labels": [list(COLOURS)[group] for group in groups],
        },
        ("image-classification", "multi_label"): {
            "images": images,
            "labels": [[list(COLOURS)[group], "warm" if group in (0, 3) else "cold"] for group in groups],
        },
        ("image-vectorisation", "triplet"): {"images": images, "groups": groups},
        ("image-vectorisation", "cosine_similarity"): {
            "imgs1": images[0:12:3] * 2,
            "imgs2": images[1:12:3] + images[3:12:3] + images[0:1],
            "similarity_scores": [1.0] * 4 + [0.0] * 4,
        },
        ("image-text-vectorisation", "triplet"): {"images": images, "texts": texts, "groups": groups},
        ("image-text-vectorisation", "cosine_similarity"): {
            "imgs1": images[0:12:3] * 2,
            "imgs2": images[1:12:3] + images[3:12:3] + images[0:1],
            "texts1": texts[0:12:3] * 2,
            "texts2": texts[1:12:3] + texts[3:12:3] + texts[0:1],
            "similarity_scores": [1.0] * 4 + [0.0] * 4,
        },
    }
    return copy.deepcopy(data[(task, variant)])
