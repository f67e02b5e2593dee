"""What every conformance rule is built from: :class:`Check`, its errors, and the helpers the rules share."""

from __future__ import annotations

import math
import reprlib
import unittest
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from bpcore.contracts import ANSWER_LABELS, ANSWER_TEXT, ANSWER_VECTOR, CONTRACTS, tasks_answering
from bpcore.errors import BpcoreError
from bpcore.testing import samples

if TYPE_CHECKING:
    from bpcore.testing.candidate import Candidate

#: Tasks by the kind of their answers, as their contracts declare.
VECTOR_TASKS = tasks_answering(ANSWER_VECTOR)
CLASSIFICATION_TASKS = tasks_answering(ANSWER_LABELS)
TEXT_TASKS = tasks_answering(ANSWER_TEXT)
#: Per-item keyword arguments of each task call (the rest, like ``labels``, apply to every item).
ITEM_FIELDS = {field for contract in CONTRACTS.values() for field in contract.item_fields}
TOLERANCE = 1e-4


class ConformanceError(AssertionError):
    """A model broke a rule of the model protocol; ``rule`` names it, ``message`` says how."""

    def __init__(self, rule: str, message: str):
        self.rule = rule
        super().__init__(f"[{rule}] {message}")


class RuleSkipped(unittest.SkipTest):
    """A ``rule`` that does not apply to this candidate, and the ``reason`` (pytest reports it as skipped, never passed)."""

    def __init__(self, rule: str, reason: str):
        self.rule = rule
        super().__init__(f"[{rule}] does not apply: {reason}")


def show(value: Any) -> str:
    """A short, readable repr of an answer: a few items of each list or dict, long strings cut."""
    shower = reprlib.Repr()
    shower.maxstring, shower.maxother, shower.maxlist, shower.maxdict, shower.maxlevel = 60, 60, 4, 4, 3
    shower.maxlong = 40
    return shower.repr(value)


def difference(first: Any, second: Any, where: str = "", tolerance: float = TOLERANCE) -> str:
    """Where two answers first differ, with both sides shown: ``[1]['sport']: 0.71 vs 0.12``."""
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)) and len(first) == len(second):
        for index, (a, b) in enumerate(zip(first, second)):
            if not close(a, b, tolerance):
                return difference(a, b, f"{where}[{index}]", tolerance)
    if isinstance(first, dict) and isinstance(second, dict) and first.keys() == second.keys():
        for key in first:
            if not close(first[key], second[key], tolerance):
                return difference(first[key], second[key], f"{where}[{key!r}]", tolerance)
    return f"{where or 'the answer'}: {show(first)} vs {show(second)}"


@attrs.frozen
class Check:
    """One named rule, for one task (or the whole model when ``task`` is None)."""

    rule: str
    task: str | None
    run: Callable[[Candidate], None]
    variant: str | None = None

    @property
    def id(self) -> str:
        return "-".join(part for part in (self.rule, self.task, self.variant) if part)

    def __call__(self, candidate: Candidate) -> None:
        try:
            self.run(candidate)
        except (ConformanceError, RuleSkipped):
            raise
        except BpcoreError as error:
            # The core's own enforcement (e.g. ModelProtocolError) is the rule being broken.
            raise ConformanceError(self.rule, f"{type(error).__name__}: {error}") from error
        except Exception as error:  # listed with the other broken rules, never aborting the run
            raise ConformanceError(self.rule, f"raised {type(error).__name__}: {str(error)[:300]}") from error


# -- helpers --------------------------------------------------------------------------------------


def task_for(candidate: Candidate, task: str, model: Any | None = None) -> Any:
    from bpcore.tasks import TASK_CLASSES

    return TASK_CLASSES[task](model if model is not None else candidate.build())


def call_inputs(candidate: Candidate, task: str) -> dict[str, Any]:
    return {**samples.inputs(task), **candidate.inputs.get(task, {})}


def single_inputs(kwargs: Mapping[str, Any], index: int) -> dict[str, Any]:
    return {key: value[index] if key in ITEM_FIELDS else value for key, value in kwargs.items()}


def item_count(kwargs: Mapping[str, Any]) -> int:
    return len(next(value for key, value in kwargs.items() if key in ITEM_FIELDS))


def close(first: Any, second: Any, tolerance: float = TOLERANCE) -> bool:
    """Answers equal, numbers within ``tolerance`` (batching pads, which moves floats a little)."""
    if isinstance(first, float) or isinstance(second, float):
        return (
            isinstance(first, (int, float))
            and isinstance(second, (int, float))
            and math.isclose(first, second, rel_tol=tolerance, abs_tol=tolerance)
        )
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return len(first) == len(second) and all(close(a, b, tolerance) for a, b in zip(first, second))
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(close(first[k], second[k], tolerance) for k in first)
    return bool(first == second)


def prepared(candidate: Candidate, task: str) -> Any:
    """A fresh model, finetuned briefly first when its inference for ``task`` needs that (own labels)."""
    model = candidate.build()
    if task in candidate.needs_finetuning:
        variant = next(iter(variants_of(task)))
        run_finetune(candidate, task_for(candidate, task, model), task, variant, epochs=1)
    return model


def variants_of(task: str) -> list[str]:
    return CONTRACTS[task].variant_names


def run_finetune(
    candidate: Candidate, task_object: Any, task: str, variant: str, epochs: int, **options: Any
) -> Any:
    """The kit's short finetune of ``task_object`` on the candidate's data; ``options`` go to ``finetune``."""
    import warnings

    data = candidate.finetune_data.get((task, variant)) or samples.finetune_data(task, variant)
    count = len(next(iter(data.values())))
    everything = list(range(count))
    optimizer = candidate.optimizer
    # Tasks with a single way to finetune (qa, the text-to-text tasks) take no ``variant``.
    chosen = {"variant": variant} if len(variants_of(task)) > 1 else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return task_object.finetune(
            data,
            **chosen,
            # Validating on the training data: the check asks whether the model learns its own data.
            validation_split=(everything, everything),
            epochs=epochs,
            **{"batch_size": min(count, 8), "early_stopping_epochs": 0, **options},
            configure_optimizers=(lambda: optimizer(task_object.model.parameters())) if optimizer else None,
            seed=0,
        )


def state_of(model: Any) -> dict[str, Any]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}
