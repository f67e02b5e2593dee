"""Small sample inputs and finetuning data: what each task's contract runs in the conformance kit.

Images are generated in memory: four visually distinct kinds (solid colours with a stripe
pattern of their own), so a tiny model can learn to tell them apart in a few steps.
"""

from __future__ import annotations

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
QA_PARAMS = {
    "questions": ["Where does Sally live?", "Where does Tom live?", "Who lives in Paris?"],
    "answers": ["London", "Paris", "Tom"],
    "contexts": ["Sally lives in London.", "Tom lives in Paris.", "Tom lives in Paris."],
}
TEXT_TO_TEXT_PARAMS = {"input_text": TEXTS, "output_text": ["yes", "no", "yes", "no"]}


def images() -> list[Any]:
    """One image of each colour."""
    return [sample_image(kind) for kind in COLOURS]


def grouped_images(per_group: int = 3) -> tuple[list[Any], list[int]]:
    """``per_group`` slightly different images of each colour, and each one's group."""
    found, groups = [], []
    for group, kind in enumerate(COLOURS):
        for variant in range(per_group):
            found.append(sample_image(kind, variant))
            groups.append(group)
    return found, groups


def grouped_texts() -> list[str]:
    """A text per image of :func:`grouped_images`, naming its colour."""
    return [f"{kind} {['thing', 'item', 'object'][i % 3]}" for kind in COLOURS for i in range(3)]


def image_labels(multi_label: bool = False) -> dict[str, Any]:
    found, groups = grouped_images()
    names = list(COLOURS)
    if multi_label:
        return {
            "images": found,
            "labels": [[names[group], "warm" if group in (0, 3) else "cold"] for group in groups],
        }
    return {"images": found, "labels": [names[group] for group in groups]}


def image_pairs(with_texts: bool = False) -> dict[str, Any]:
    found, _ = grouped_images()
    pairs = {
        "imgs1": found[0:12:3] * 2,
        "imgs2": found[1:12:3] + found[3:12:3] + found[0:1],
        "similarity_scores": [1.0] * 4 + [0.0] * 4,
    }
    if with_texts:
        texts = grouped_texts()
        pairs["texts1"] = texts[0:12:3] * 2
        pairs["texts2"] = texts[1:12:3] + texts[3:12:3] + texts[0:1]
    return pairs


def image_groups(with_texts: bool = False) -> dict[str, Any]:
    found, groups = grouped_images()
    return (
        {"images": found, "texts": grouped_texts(), "groups": groups}
        if with_texts
        else {
            "images": found,
            "groups": groups,
        }
    )
