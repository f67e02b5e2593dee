"""The conformance kit: the checks every bpcore model must pass, as scikit-learn's ``check_estimator``.

Run them all at once with :func:`check_model`, or one pytest test per rule with
:func:`parametrize_with_checks`. A model is described by a :class:`Candidate` (a factory
that builds a fresh model, and the tasks it claims), or simply by a registered model name.

Example::

    from bpcore.testing import Candidate, parametrize_with_checks

    @parametrize_with_checks([
        Candidate(MyModel, tasks=["text-vectorisation"], finetunable=["text-vectorisation"]),
        "my-registered-model",
    ])
    def test_conformance(candidate, check):
        check(candidate)

The checks, each failing with a :class:`ConformanceError` that names its rule:

- ``light-plugin-module``: importing the model's plugin and calling its hooks imports no torch
  and no model library;
- ``answer-shape``: one answer per item, of the task's kind (text, sorted ``{label: p}`` with
  probabilities in [0, 1] summing to 1 for zero-shot labels, vectors of one size);
- ``single-equals-batched``: an item alone gets the answer it gets in a batch;
- ``deterministic``: a model left in training mode still answers the same twice (the first
  call switches it to eval mode, once, and it stays there);
- ``thread-safe``: 8 threads making 64 calls each (``Candidate.thread_calls``) on one task object
  get exactly the answers of the same calls made one by one;
- ``top-k``, ``return-tensor``, ``image-input-kinds`` where the task has them;
- ``save-load``: :func:`bpcore.save` then :func:`bpcore.load` answers identically;
- ``finetuning-learns``: per finetunable task and variant, a short finetune changes the weights,
  lowers the loss on its own data, leaves the model in eval mode and survives save/load;
- ``saved-paths-inside``, ``saved-files-required``, ``saved-numbers-bounded``: a saved folder
  whose path-like strings point outside, that misses a file, or whose numbers are 10**9 loads
  with a bpcore error or with unchanged answers, opening nothing outside the folder
  (:mod:`bpcore.testing.folder_checks`);
- ``resume``: for the first finetunable task and variant, a run checkpointed after epoch 1 and
  resumed on a fresh model ends with the uninterrupted run's losses, learning rates and weights;
- ``bad-input``: per task (and per finetunable task and variant), hypothesis-generated malformed
  input (see :mod:`bpcore.testing.fuzz`) gets a success or a bpcore error naming the field, never
  a raw ``TypeError``/``KeyError``/``IndexError``/``ValueError``/``RuntimeError``; finetuning
  rejects it before training. ``bpcore.testing.fuzz.FUZZ_STATS`` counts the cases run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bpcore.testing.candidate import Candidate, as_candidate
from bpcore.testing.checks import model_checks
from bpcore.testing.fuzz import FUZZ_STATS, fuzz_count
from bpcore.testing.rules import Check, ConformanceError, RuleSkipped

__all__ = [
    "FUZZ_STATS",
    "Candidate",
    "Check",
    "ConformanceError",
    "RuleSkipped",
    "check_model",
    "fuzz_count",
    "model_checks",
    "parametrize_with_checks",
]


def check_model(model: Candidate | str | Callable[[], Any]) -> list[str]:
    """Run every check; raise one :class:`ConformanceError` listing each broken rule.

    ``model`` is a :class:`Candidate`, a registered model name (:meth:`Candidate.registered`) or
    a function that builds the model (its tasks are read from a first build). Returns the ids of
    the rules that did not apply (skipped) when the model conforms.

    Example::

        from bpcore.testing import Candidate, check_model

        skipped = check_model(Candidate(MyModel, tasks=["text-vectorisation"], trust_code=True))
    """
    candidate = as_candidate(model)
    failures, skipped = [], []
    for check in model_checks(candidate):
        try:
            check(candidate)
        except RuleSkipped:
            skipped.append(check.id)
        except ConformanceError as error:
            failures.append(f"{check.id}: {error}")
    if failures:
        raise ConformanceError(
            "conformance", f"{candidate.id} breaks {len(failures)} rule(s):\n  " + "\n  ".join(failures)
        )
    return skipped


def parametrize_with_checks(models: Sequence[Candidate | str | Callable[[], Any]]) -> Any:
    """A ``pytest.mark.parametrize`` over ``(candidate, check)``: one test per model and rule.

    ``models`` holds :class:`Candidate` objects, registered model names or model-building
    functions, as :func:`check_model` takes them. Test ids read
    ``<model>-<rule>-<task>[-<variant>]``, so a failure names the broken rule.

    Example::

        @parametrize_with_checks([Candidate.registered("my-model"), "my-other-model"])
        def test_conformance(candidate, check):
            check(candidate)
    """
    import pytest

    candidates = [as_candidate(model) for model in models]
    pairs = [(candidate, check) for candidate in candidates for check in model_checks(candidate)]
    return pytest.mark.parametrize(
        "candidate, check", pairs, ids=[f"{candidate.id}-{check.id}" for candidate, check in pairs]
    )
