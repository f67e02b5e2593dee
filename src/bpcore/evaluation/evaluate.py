"""``task.evaluate``: the model's answers on labelled data, scored with the metrics of the task's variant."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from bpcore.errors import BpcoreError, InputError, InputTypeError
from bpcore.evaluation import answers as answering
from bpcore.evaluation.definitions import (
    LIBRARIES,
    MULTI_LABEL,
    RETRIEVAL,
    SIMILARITY,
    SINGLE_LABEL,
    kind_of,
)
from bpcore.evaluation.results import Metrics

if TYPE_CHECKING:
    from bpcore.tasks.base import Task

INSTALL_HINT = "pip install 'bpcore[evaluate]'"


def evaluate(
    task: Task,
    params: Any,
    variant: str | None = None,
    *,
    predictions: bool = False,
    threshold: float = 0.5,
) -> Metrics:
    """Score ``task``'s model on ``params`` (the keys ``finetune`` takes for ``variant``); see :meth:`Task.evaluate`."""
    check_threshold(threshold)
    name = variant if variant is not None else variant_for(task, params)
    data = task.check_params(params, name)
    return score(task, data, task.contract.variant(name).name, predictions=predictions, threshold=threshold)


def score(
    task: Task, data: Any, variant: str, *, predictions: bool = False, threshold: float = 0.5
) -> Metrics:
    """Score ``task``'s model on ``data``, params ``task.check_params`` already checked for ``variant``."""
    kind = kind_of(task.task, variant)
    require(kind)
    values, predicted, settings = _score(task, data, variant, kind, threshold)
    return Metrics(
        values,
        task=task.task,
        variant=variant if len(task.variants) > 1 else None,
        examples=len(answering.targets(data)),
        predictions=predicted if predictions else None,
        settings=settings,
    )


def on_rows(task: Task, data: Any, variant: str) -> Callable[[Sequence[int]], dict[str, float]]:
    """What ``finetune(metrics=True)`` hands the loop: ``evaluate(indices)``, the metrics of one
    number each (:meth:`Metrics.scalars`) on the rows of the checked ``data`` at ``indices``.

    The loop's example ``i`` is params row ``i`` in every variant, so its validation indices
    pick the validation rows; the rows are not checked again (nor their images opened).
    """
    require(kind_of(task.task, variant))  # a missing library fails before training, not after an epoch

    def evaluate_rows(indices: Sequence[int]) -> dict[str, float]:
        return score(task, rows(data, indices), variant).scalars()

    return evaluate_rows


def rows(data: Any, indices: Sequence[int]) -> Any:
    """The checked params ``data`` (an attrs instance of parallel lists) with only the rows at ``indices``."""
    columns = {
        field.name: [column[index] for index in indices]
        for field in attrs.fields(type(data))
        if isinstance(column := getattr(data, field.name), (list, tuple))
    }
    return attrs.evolve(data, **columns)


def _score(
    task: Task, data: Any, variant: str | None, kind: str, threshold: float
) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
    """The metrics, the per-item predictions and the settings that shaped them."""
    from bpcore.evaluation import classification, similarity, texts

    truth = answering.targets(data)
    if kind in (SINGLE_LABEL, MULTI_LABEL):
        scores, learned = answering.label_answers(task, data, variant, kind == MULTI_LABEL)
        settings: dict[str, Any] = {"labels": "learned" if learned else "zero-shot"}
        if kind == SINGLE_LABEL:
            return (*classification.single_label(truth, scores), settings)
        return (*classification.multi_label(truth, scores, threshold), {**settings, "threshold": threshold})
    sides = answering.side_answers(task, data, variant)
    if kind == SIMILARITY:
        return (*similarity.pairs(truth, sides[0], sides[1]), {})
    if kind == RETRIEVAL:
        return (*similarity.groups(truth, sides[0]), {})
    return (*texts.text_scores(truth, sides[0]), {})


def variant_for(task: Task, params: Any) -> str | None:
    """The variant the params' keys fit (the default first), as ``bpcore finetune`` picks it for a file."""
    from bpcore.datafiles import choose_variant

    if not isinstance(params, Mapping):
        return None  # check_params says what params must be
    return choose_variant(type(task), params)


def check_threshold(threshold: Any) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise InputTypeError(
            f"expected a number between 0 and 1, got {type(threshold).__name__}", field="threshold"
        )
    if not 0.0 < threshold < 1.0:
        raise InputError(f"must be between 0 and 1 (exclusive), got {threshold}", field="threshold")


def require(kind: str) -> None:
    """Import the packages ``kind`` computes with; a missing one is a :class:`~bpcore.BpcoreError` saying how to install it."""
    for module, distribution in LIBRARIES[kind]:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise BpcoreError(
                f"evaluating needs {distribution}, which is not installed: {INSTALL_HINT}"
            ) from error
