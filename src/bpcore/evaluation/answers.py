"""The model's answers for evaluation data: the task called on the params' columns, in chunks.

Evaluation calls the task as a user would (checked input, the model lock, a remote server for
``local=False``), so it measures what the task answers. Which params columns become the
call's arguments, and which column holds the expected answer, is declared per task here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bpcore.errors import InputError
from bpcore.tasknames import (
    IMAGE_CLASSIFICATION,
    IMAGE_TEXT_VECTORISATION,
    IMAGE_VECTORISATION,
    QA,
    TEXT_CLASSIFICATION,
    TEXT_VECTORISATION,
)

#: Items per task call: bounds the images decoded at once, and a remote call's size.
CHUNK = 64
#: The call's positional arguments: params columns per side (two sides: the two halves of pairs).
PAIRS = "cosine_similarity"
ARGUMENTS: dict[str, dict[str | None, tuple[tuple[str, ...], ...]]] = {
    TEXT_CLASSIFICATION: {None: (("texts",),)},
    IMAGE_CLASSIFICATION: {None: (("images",),)},
    TEXT_VECTORISATION: {PAIRS: (("texts1",), ("texts2",)), None: (("texts",),)},
    IMAGE_VECTORISATION: {PAIRS: (("imgs1",), ("imgs2",)), None: (("images",),)},
    IMAGE_TEXT_VECTORISATION: {
        PAIRS: (("imgs1", "texts1"), ("imgs2", "texts2")),
        None: (("images", "texts"),),
    },
    QA: {None: (("questions", "contexts", "prev_qas"),)},
}
#: The text-to-text tasks' call: the input texts.
TEXT_TO_TEXT: dict[str | None, tuple[tuple[str, ...], ...]] = {None: (("input_text",),)}
#: The params column holding what the answers are compared with.
TARGETS = ("labels", "similarity_scores", "groups", "answers", "output_text")


def sides(task: str, variant: str | None) -> tuple[tuple[str, ...], ...]:
    """The params columns of each side's call (one side, or two for pairs)."""
    by_variant = ARGUMENTS.get(task, TEXT_TO_TEXT)
    return by_variant.get(variant, by_variant[None])


def targets(data: Any) -> list[Any]:
    """The expected answers: the one target column the variant's params hold."""
    return next(list(getattr(data, name)) for name in TARGETS if hasattr(data, name))


def columns(data: Any, names: Sequence[str]) -> list[list[Any]]:
    count = len(targets(data))
    # An optional column left out (QA's prev_qas) is an empty history per item.
    return [list(getattr(data, name) or [[] for _ in range(count)]) for name in names]


def call_in_chunks(task: Any, arguments: list[list[Any]], **options: Any) -> list[Any]:
    """``task(*arguments, **options)`` in chunks of :data:`CHUNK` items; one answer per item."""
    answers: list[Any] = []
    for start in range(0, len(arguments[0]), CHUNK):
        answers.extend(task(*[column[start : start + CHUNK] for column in arguments], **options))
    return answers


def side_answers(task: Any, data: Any, variant: str | None) -> list[list[Any]]:
    """The answers for each side's items: vectors, texts or label scores."""
    return [call_in_chunks(task, columns(data, names)) for names in sides(task.task, variant)]


def label_answers(task: Any, data: Any, variant: str | None, multi_label: bool) -> tuple[list[Any], bool]:
    """``({label: probability} per item, learned)``: over the model's own labels when it has them,
    else zero-shot over the labels the data holds (``learned`` is False)."""
    (names,) = sides(task.task, variant)
    arguments = columns(data, names)
    options = {"multi_label": True} if multi_label and task.task == TEXT_CLASSIFICATION else {}
    try:
        answers = call_in_chunks(task, arguments, **options)
    except InputError as error:
        if error.field != "input.labels":
            raise
        # The model has no labels of its own (every plugin says so with this field; the first chunk
        # tells): zero-shot over the data's labels.
        labels = sorted({label for item in data.labels for label in _as_list(item)})
        return call_in_chunks(task, arguments, labels=labels, **options), False
    check_known(data.labels, answers[0])
    return answers, True


def check_known(labels: Sequence[Any], answer: Any) -> None:
    """Every label in the data is one the model answers with; an :class:`InputError` naming each item."""
    known = set(answer)
    names = sorted(known)
    listed = f"{names}" if len(names) <= 20 else f"{names[:20]} and {len(names) - 20} more"
    problems = [
        (f"params.labels[{index}]", f"{label!r:.60} is not a label this model knows; it knows {listed}")
        for index, item in enumerate(labels)
        for label in _as_list(item)
        if label not in known
    ]
    if problems:
        more = len(problems) - 5
        raise InputError(problems[:5] + ([("params.labels", f"and {more} more")] if more > 0 else []))


def _as_list(item: Any) -> list[Any]:
    return [item] if isinstance(item, str) else list(item)
