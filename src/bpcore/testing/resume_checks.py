"""The conformance kit's ``resume`` rule: a finetune resumed from a checkpoint ends as the uninterrupted one.

bpcore's loop checkpoints the model, the optimizer, the learning-rate schedule and every random
state (Accelerate's ``save_state``), plus its own loop state. A model still breaks resuming when
it keeps training state anywhere else: an optimizer whose warm-up counter lives outside its
``state_dict``, a transform with its own random generator, a buffer missing from
``state_dict``. This rule finds that out: it finetunes for 2 epochs with checkpoints, then on a
fresh model for 1 epoch and resumes that run to 2 epochs, and compares the two.

The runs share this process (a candidate's factory need not be importable elsewhere), so the
rule catches state a checkpoint misses, not module-level state only a new process would lose;
a plugin tests that with a run killed in one process and resumed in another (as bp-effnet's
``test_effnet_resume.py`` does).

Example::

    from bpcore.testing.candidate import Candidate
    from bpcore.testing.resume_checks import resume_checks

    candidate = Candidate(MyModel, tasks=["text-vectorisation"], finetunable=["text-vectorisation"])
    for check in resume_checks(candidate):
        check(candidate)  # raises ConformanceError("resume", ...) if the resumed run ends elsewhere
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from bpcore.testing import samples
from bpcore.testing.rules import Check, ConformanceError, run_finetune, state_of, task_for, variants_of

if TYPE_CHECKING:
    from bpcore.testing.candidate import Candidate

RULE = "resume"
EPOCHS = 2
#: Allowed difference off the CPU only: GPU kernels (atomic adds, autotuned convolutions) are not
#: bit-reproducible even between two uninterrupted runs. On the CPU the loop is, so any
#: difference there is state the checkpoint missed.
DEVICE_TOLERANCE = 1e-4


def _finetune(
    candidate: Candidate, start: dict[str, Any], task: str, variant: str, epochs: int, **options: Any
) -> tuple[Any, Any]:
    """A fresh model, set to the weights ``start``, finetuned for ``epochs`` with ``options``:
    its history and final weights."""
    model = candidate.build()
    # A factory may draw random weights: every run starts from the same ones.
    model.load_state_dict(start)
    history = run_finetune(candidate, task_for(candidate, task, model), task, variant, epochs, **options)
    return history, state_of(model)


def _batch_size(candidate: Candidate, task: str, variant: str) -> int:
    # At least two optimizer steps an epoch: optimizer-side state (a warm-up counter, say) that a
    # checkpoint misses shows only from the second step after the resume.
    data = candidate.finetune_data.get((task, variant)) or samples.finetune_data(task, variant)
    count = len(next(iter(data.values())))
    return min(8, max(2, math.ceil(count / 2)))


def check_resume_matches_uninterrupted(candidate: Candidate, task: str, variant: str) -> None:
    """A run checkpointed after epoch 1 and resumed on a fresh model ends with the uninterrupted run's
    losses (every batch's and every epoch's), learning rates, best epoch and weights."""
    batch_size = _batch_size(candidate, task, variant)
    where = f"{task}/{variant}"
    start = state_of(candidate.build())
    with tempfile.TemporaryDirectory() as folder:
        run = partial(_finetune, candidate, start, task, variant, batch_size=batch_size)
        whole, whole_weights = run(EPOCHS, checkpoint_dir=f"{folder}/whole")
        run(1, checkpoint_dir=f"{folder}/resumed")
        resumed, weights = run(EPOCHS, checkpoint_dir=f"{folder}/resumed", resume=True)
    if resumed.resumed_after_epoch != 1:
        raise ConformanceError(RULE, f"{where}: the second run did not resume from epoch 1's checkpoint")
    tolerance = 0.0 if _device(weights) == "cpu" else DEVICE_TOLERANCE
    for name, expected, got in (
        ("step losses", whole.step_losses, resumed.step_losses),
        ("training losses", whole.train_loss, resumed.train_loss),
        ("validation losses", whole.val_loss, resumed.val_loss),
        (
            "learning rates",
            [e.learning_rate for e in whole.epochs],
            [e.learning_rate for e in resumed.epochs],
        ),
    ):
        if not _close(expected, got, tolerance):
            raise ConformanceError(
                RULE,
                f"{where}: resumed after epoch 1, the run's {name} are {got} instead of the uninterrupted "
                f"run's {expected}: some training state (e.g. an optimizer's step counter kept outside its "
                "state_dict, or a random generator of its own) is not in the checkpoint",
            )
    if resumed.best_epoch != whole.best_epoch:
        raise ConformanceError(
            RULE, f"{where}: best epoch {resumed.best_epoch}, uninterrupted {whole.best_epoch}"
        )
    differing = _differing_weights(whole_weights, weights, tolerance)
    if differing:
        raise ConformanceError(
            RULE,
            f"{where}: resumed after epoch 1, the run ends with other weights than the uninterrupted run "
            f"({len(differing)} tensors differ, e.g. {differing[:3]})",
        )


def _device(weights: dict[str, Any]) -> str:
    return next((str(value.device.type) for value in weights.values()), "cpu")


def _close(expected: list[Any], got: list[Any], tolerance: float) -> bool:
    return len(expected) == len(got) and all(_same(a, b, tolerance) for a, b in zip(expected, got))


def _same(expected: float | None, got: float | None, tolerance: float) -> bool:
    if expected is None or got is None:
        return expected is got
    if math.isnan(expected) or math.isnan(got):  # a validation that measured nothing, in both runs
        return math.isnan(expected) and math.isnan(got)
    return expected == got or math.isclose(expected, got, rel_tol=tolerance, abs_tol=tolerance)


def _differing_weights(expected: dict[str, Any], got: dict[str, Any], tolerance: float) -> list[str]:
    import torch

    if expected.keys() != got.keys():
        return sorted(set(expected) ^ set(got))
    return [
        key
        for key, value in expected.items()
        if value.shape != got[key].shape
        or not (
            torch.equal(value, got[key])
            if not tolerance or not value.is_floating_point()
            else torch.allclose(value.float(), got[key].float(), rtol=tolerance, atol=tolerance)
        )
    ]


def resume_checks(candidate: Candidate) -> Iterator[Check]:
    """The ``resume`` check for the first finetunable task and its first variant (each run finetunes
    three times: one task bounds the kit's time, and the loop's resume does not depend on the task)."""
    for task in candidate.finetunable:
        for variant in variants_of(task):
            if (task, variant) not in candidate.skip_variants:
                yield Check(
                    RULE,
                    task,
                    partial(check_resume_matches_uninterrupted, task=task, variant=variant),
                    variant,
                )
                return
