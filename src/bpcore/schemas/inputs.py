"""What each task's ``__call__`` hands its model: always batched, one entry per item."""

from __future__ import annotations

import math

import attrs

from bpcore.errors import InputError
from bpcore.schemas.checks import check_parallel
from bpcore.schemas.converter import ImageRef


def _check_labels(labels: list[list[str]] | None, count: int, root: str) -> None:
    if labels is None:
        return
    if len(labels) != count:
        raise InputError(f"has {len(labels)} label lists for {count} items", field=f"{root}.labels")
    for index, item_labels in enumerate(labels):
        if not item_labels:
            raise InputError("is an empty label list", field=f"{root}.labels[{index}]")
        if len(set(item_labels)) != len(item_labels):
            raise InputError("has a label twice", field=f"{root}.labels[{index}]")


def _check_top_k(top_k: int, root: str) -> None:
    if top_k < 0:
        raise InputError(f"must be 0 (all) or positive, got {top_k}", field=f"{root}.top_k")


@attrs.frozen
class QAInput:
    question: list[str]
    context: list[str]
    prev_qa: list[list[tuple[str, str]]]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("question", "context", "prev_qa"), "questions")


@attrs.frozen
class TextInput:
    """Input of emotion, summarisation and text-vectorisation."""

    text: list[str]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("text",), "texts")


@attrs.frozen
class TextClassificationInput:
    text: list[str]
    labels: list[list[str]] | None = None
    top_k: int = 0
    multi_label: bool = False

    def check(self, root: str) -> None:
        count = check_parallel(self, root, ("text",), "texts")
        _check_labels(self.labels, count, root)
        _check_top_k(self.top_k, root)


@attrs.frozen
class TextGenerationInput:
    text: list[str]
    min_length: int | None = None
    max_length: int | None = None
    temperature: float | None = None
    # Spec 3.4.8 types it float: a whole number is taken (5.0 is 5).
    top_k: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    length_penalty: float | None = None
    num_beams: int | None = None
    num_generations: int | None = None
    do_sample: bool | None = None

    def check(self, root: str) -> None:
        check_parallel(self, root, ("text",), "texts")
        for field in ("min_length", "max_length", "num_beams", "num_generations"):
            value = getattr(self, field)
            if value is not None and value < (0 if field == "min_length" else 1):
                raise InputError(f"must be positive, got {value}", field=f"{root}.{field}")
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise InputError("must be 0 (no randomness) or above", field=f"{root}.temperature")
        if self.top_k is not None and not (
            math.isfinite(self.top_k) and self.top_k >= 0 and self.top_k == int(self.top_k)
        ):
            raise InputError(
                f"must be a whole number, 0 (no limit) or above, got {self.top_k}", field=f"{root}.top_k"
            )
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InputError("must be in (0, 1]", field=f"{root}.top_p")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise InputError("is above max_length", field=f"{root}.min_length")


@attrs.frozen
class ImageClassificationInput:
    image: list[ImageRef]
    labels: list[list[str]] | None = None
    top_k: int = 0

    def check(self, root: str) -> None:
        count = check_parallel(self, root, ("image",), "images")
        _check_labels(self.labels, count, root)
        _check_top_k(self.top_k, root)


@attrs.frozen
class ImageInput:
    image: list[ImageRef]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("image",), "images")


@attrs.frozen
class ImageTextInput:
    image: list[ImageRef]
    text: list[str]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("image", "text"), "images")
