"""How each variant's checked ``params`` become examples: the dicts ``process_batch`` receives.

An :class:`~bpcore.batching.Example` holds one view per item the model sees (two for a
cosine-similarity pair) and the target the core's loss compares with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bpcore.batching import Example


def label_index(labels: Sequence[str]) -> dict[str, int]:
    """Sorted unique labels numbered from 0."""
    return {label: index for index, label in enumerate(sorted(set(labels)))}


def labels_of(data: Any) -> dict[str, int]:
    """Label → index for single-label (a label per item) or multi-label (a list per item) data."""
    flat = [label for item in data.labels for label in ([item] if isinstance(item, str) else item)]
    return label_index(flat)


def group_index(groups: Sequence[Any]) -> list[int]:
    """Group ids (ints or strings) as consecutive integers."""
    index: dict[Any, int] = {}
    return [index.setdefault(group, len(index)) for group in groups]


def multi_hot(item_labels: list[str], index: Mapping[str, int]) -> list[float]:
    row = [0.0] * len(index)
    for label in item_labels:
        row[index[label]] = 1.0
    return row


# -- text-to-text ------------------------------------------------------------------------------


def qa_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    prev_qas = data.prev_qas or [[] for _ in data.questions]
    return [
        Example(
            ({"question": question, "context": context, "prev_qa": prev_qa, "output": answer, **options},)
        )
        for question, answer, context, prev_qa in zip(data.questions, data.answers, data.contexts, prev_qas)
    ]


def text_to_text_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example(({"input": source, "output": target, **options},))
        for source, target in zip(data.input_text, data.output_text)
    ]


# -- classification ----------------------------------------------------------------------------


def text_single_label_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    index = labels_of(data)
    # The label index rides along as the target, for a model that returns logits instead of its loss.
    return [
        Example(
            ({"inputs": text, "labels": label, "class_to_idx": index, "max_length": options["max_length"]},),
            index[label],
        )
        for text, label in zip(data.texts, data.labels)
    ]


def text_multi_label_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    index = labels_of(data)
    return [
        Example(
            ({"inputs": text, "class_to_idx": index, "max_length": options["max_length"]},),
            multi_hot(labels, index),
        )
        for text, labels in zip(data.texts, data.labels)
    ]


def image_single_label_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    index = labels_of(data)
    return [Example(({"image": image},), index[label]) for image, label in zip(data.images, data.labels)]


def image_multi_label_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    index = labels_of(data)
    return [
        Example(({"image": image},), multi_hot(labels, index))
        for image, labels in zip(data.images, data.labels)
    ]


# -- vectorisation -----------------------------------------------------------------------------


def _text_view(text: str, options: Mapping[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {"text": text}
    if options.get("max_length") is not None:
        view["max_length"] = options["max_length"]
    return view


def text_pair_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example((_text_view(a, options), _text_view(b, options)), score)
        for a, b, score in zip(data.texts1, data.texts2, data.similarity_scores)
    ]


def text_group_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example((_text_view(text, options),), group)
        for text, group in zip(data.texts, group_index(data.groups))
    ]


def image_group_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example(({"image": image},), group) for image, group in zip(data.images, group_index(data.groups))
    ]


def image_pair_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example(({"image": a}, {"image": b}), score)
        for a, b, score in zip(data.imgs1, data.imgs2, data.similarity_scores)
    ]


def image_text_group_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example(({"image": image, "text": text},), group)
        for image, text, group in zip(data.images, data.texts, group_index(data.groups))
    ]


def image_text_pair_examples(data: Any, options: Mapping[str, Any]) -> list[Example]:
    return [
        Example(({"image": image1, "text": text1}, {"image": image2, "text": text2}), score)
        for image1, image2, text1, text2, score in zip(
            data.imgs1, data.imgs2, data.texts1, data.texts2, data.similarity_scores
        )
    ]
