"""The one finetuning loop every task uses, built on Accelerate.

It runs unchanged on one CPU, one GPU, or several processes started by ``accelerate launch``.
:func:`fit` settles the run once (:func:`prepare`: the checks, the seed, the split, the batch
size, a checkpoint to resume), then trains it in attempts (:class:`~bpcore.training.run.Run`),
a new attempt with a smaller batch after an out-of-memory error.
"""

from __future__ import annotations

import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import torch

from bpcore.errors import BpcoreError, InputError, TrainingError
from bpcore.training import checkpoints
from bpcore.training.data import (
    MakeBatchPlan,
    split_indices,
    unusable_validation,
)
from bpcore.training.history import BpcoreWarning, History
from bpcore.training.options import (
    LOOP,
    TRAINING,
    ValidationSplit,
    check_options,
    check_validation_split,
    with_defaults,
)
from bpcore.training.run import Run, snapshot
from bpcore.training.setup import Evaluate, Resumed, Setup, Step

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training.options import LoopOptions


def fit(
    model: torch.nn.Module,
    dataset: Any,
    *,
    step: Step,
    configure_optimizers: Callable[[], torch.optim.Optimizer],
    collate_fn: Callable[[list[Any]], Any] | None = None,
    make_batch_plan: MakeBatchPlan | None = None,
    groups: Sequence[Hashable] | None = None,
    cpu: bool = False,
    validation_split: ValidationSplit = 0.15,
    evaluate: Evaluate | None = None,
    **options: Unpack[LoopOptions],
) -> History:
    """Finetune ``model`` on ``dataset`` and return the :class:`~bpcore.training.History`.

    ``step(batch, batch_idx)`` returns the loss of a batch; ``configure_optimizers()`` builds the
    optimizer; ``collate_fn`` turns a list of examples into a batch (default: PyTorch's);
    ``make_batch_plan`` orders the examples into batches (the group sampler of triplet
    finetuning); ``cpu=True`` trains on the CPU whatever is available; ``validation_split`` is
    the fraction held out, or ``(train_indices, val_indices)``; ``options`` are the
    :class:`~bpcore.training.options.LoopOptions` (every ``TrainingOptions`` but ``step`` and
    ``configure_optimizers``). After training the weights of the best epoch (by the validation
    loss, or by ``early_stopping_metric``) are loaded back, and the model is left in ``eval()``
    mode. With ``batch_size=None`` the batch starts at ``optimal_batch_size`` (at most the data
    size) and shrinks on out-of-memory errors (each retry starts again from the weights and seed
    the run began with), and gradients accumulate so that each optimizer step still sees about as
    many examples.

    ``evaluate(indices)`` returns the metrics (name → number) of the model on the examples at
    ``indices``: with ``metrics=True`` the loop calls it on the validation part after each
    epoch (see :meth:`~bpcore.training.run.Run.measure`), and ``early_stopping_metric`` may
    name one of them. A task's ``finetune`` hands over its evaluation.

    Under several processes (``torchrun``, ``accelerate launch``), ``batch_size`` is the
    batch of the whole run: each process takes its share of every batch, so the run ends
    as a single process would (up to rounding, and to dropout's per-process randomness).

    ``groups[i]`` is the group of example ``i`` for triplet finetuning: a fractional split
    then holds out by group (see :func:`~bpcore.training.data.split_indices`), and a validation
    part on which no triplet exists is not used: the run validates on the training data and
    says so. Validation batches that form no triplet are merged with the next batch, and a
    validation loss that measured no triplet never counts as an improvement.

    Example::

        history = fit(model, dataset, step=step, configure_optimizers=lambda: adamw(model.parameters(), 1e-4),
                      epochs=5, batch_size=16, seed=0)
    """
    check_options({"step": step, "configure_optimizers": configure_optimizers}, TRAINING)
    check_options(options, LOOP)
    check_validation_split(validation_split, len(dataset))
    if options.get("metrics") and evaluate is None:
        raise InputError("needs evaluate=, the function that computes the metrics", field="metrics")
    parts = (model, dataset, step, configure_optimizers, collate_fn, make_batch_plan, groups, cpu)
    setup = prepare(*parts, validation_split, with_defaults(options), evaluate)
    return retrying_out_of_memory(setup) if setup.can_retry else attempt(setup, setup.start_batch_size)


def retrying_out_of_memory(setup: Setup) -> History:
    """Attempts from the starting batch size, each after an out-of-memory error with a batch 0.9
    times as large (each from the initial weights and seed, see :meth:`~bpcore.training.run.Run.prepare`).

    As accelerate's ``find_executable_batch_size`` shrinks, without its full garbage collection
    before every run (~0.3 s on CPU): memory is collected only after an out-of-memory error.
    """
    size = setup.start_batch_size
    while True:
        try:
            return attempt(setup, size)
        except BpcoreError:
            raise
        except Exception as error:
            if not out_of_memory(error):
                raise
            if size == 1:  # even a batch of one does not fit in memory
                raise TrainingError(f"finetuning ran out of memory ({error})", setup.history) from error
            release_memory()
            size = max(1, int(size * 0.9))


def attempt(setup: Setup, size: int) -> History:
    """Train at batch ``size``: prepare, then train, validate and checkpoint each epoch; the model
    ends at its best weights whatever happens (an error, Ctrl-C)."""
    run = Run(setup, size)
    run.prepare()
    try:
        for epoch in run.epochs():
            started = time.perf_counter()
            step_losses = run.train_epoch(epoch)
            val_loss = run.validate(epoch)
            run.end_epoch(epoch, step_losses, val_loss, run.measure(epoch), started)
            run.checkpoint(epoch)
            if run.finished:
                break
    except BpcoreError as error:
        # Every bpcore error of a run carries it (TrainingError declares it; errors.py documents it).
        error.history = setup.history  # type: ignore[attr-defined]
        raise
    except Exception as error:
        if out_of_memory(error):
            raise  # retried with a smaller batch
        raise TrainingError(
            f"finetuning failed in epoch {len(setup.history.epochs) + 1} ({type(error).__name__}: {error})",
            setup.history,
        ) from error
    finally:
        run.restore_best()
    return setup.history


def prepare(
    model: torch.nn.Module,
    dataset: Any,
    step: Step,
    configure_optimizers: Callable[[], torch.optim.Optimizer],
    collate_fn: Callable[[list[Any]], Any] | None,
    make_batch_plan: MakeBatchPlan | None,
    groups: Sequence[Hashable] | None,
    cpu: bool,
    validation_split: ValidationSplit,
    options: dict[str, Any],
    evaluate: Evaluate | None = None,
) -> Setup:
    """Settle the run: the process state, a checkpoint to resume, the seed, the split, the batch size."""
    from accelerate import PartialState
    from accelerate.utils import set_seed

    state = PartialState(cpu=cpu)
    resumed = find_checkpoint(options["checkpoint_dir"], state) if options["resume"] else None
    seed = options["seed"]
    if seed is None and resumed is not None:
        seed = resumed.loop_state["history"]["seed"]  # a resumed run reuses the seed of the run it continues
    seed = random.randrange(2**31) if seed is None else seed
    set_seed(seed)
    history = History(
        seed=seed, num_processes=state.num_processes, early_stopping_metric=options["early_stopping_metric"]
    )
    parts = (model, dataset, step, configure_optimizers, collate_fn, make_batch_plan, groups, cpu, options)
    setup = Setup(*parts, state=state, seed=seed, history=history, resumed=resumed, evaluate=evaluate)
    _split(setup, validation_split)
    optimal: int = options["optimal_batch_size"] or getattr(model, "optimal_batch_size", 16)
    setup.start_batch_size = min(options["batch_size"] or optimal, len(setup.train_indices))
    if resumed is not None:
        _check_resumable(setup, resumed)
    setup.initial_state = snapshot(model)
    return setup


def _split(setup: Setup, validation_split: ValidationSplit) -> None:
    """The training and validation indices; the training data doubles as validation data (with a
    warning) when the validation part cannot be validated on."""
    count = len(setup.dataset)
    setup.train_indices, setup.val_indices = split_indices(count, validation_split, setup.seed, setup.groups)
    if setup.options["val_dataloader"] is not None:
        setup.history.validated_on = "validation dataloader"
        return
    reason = unusable_validation(
        setup.val_indices, setup.groups, validation_split, setup.options["train_dataloader"]
    )
    if reason is not None:
        setup.history.validated_on = "training data"
        warn(
            setup.state,
            f"the validation split ({validation_split!r} of {count} examples) {reason}: "
            "validating on the training data, so early stopping only sees the training loss",
        )
        setup.val_indices = setup.train_indices


def find_checkpoint(checkpoint_dir: str | os.PathLike[str], state: Any) -> Resumed | None:
    """The checkpoint to resume from, checked whole first: a damaged one is passed over for the
    one before it (with a warning); None when there is none yet."""
    found, skipped = checkpoints.resumable_checkpoint(checkpoint_dir)
    for passed_over, reason in skipped:
        warn(state, f"resume: skipped the checkpoint {passed_over} ({reason})")
    if found is None:
        warn(state, f"resume: no checkpoint in {checkpoint_dir} yet, so the run starts from the beginning")
        return None
    return Resumed(*found)


def _check_resumable(setup: Setup, resumed: Resumed) -> None:
    # The resumed run keeps the batch it ran with (an out-of-memory retry may have shrunk it).
    saved = resumed.loop_state["fingerprint"]
    batch_size = setup.options["batch_size"]
    setup.start_batch_size = saved["batch_size"] if batch_size is None else batch_size
    expected = setup.fingerprint(setup.start_batch_size, saved["gradient_accumulation_steps"])
    if saved != expected:
        raise InputError(
            f"the checkpoint in {resumed.folder} was written by a run on other data, another batch size, "
            f"learning-rate schedule or early_stopping_metric ({saved}, this run: {expected}); resume "
            "with the same data and options, or give a new checkpoint_dir",
            field="resume",
        )


def out_of_memory(error: BaseException) -> bool:
    from accelerate.utils.memory import should_reduce_batch_size

    return isinstance(error, Exception) and should_reduce_batch_size(error)


def release_memory() -> None:
    """Collect garbage and free the device's cache: only after an out-of-memory error (it costs ~0.3 s)."""
    import gc

    from accelerate.utils.memory import clear_device_cache

    gc.collect()
    clear_device_cache()


_PACKAGE = str(Path(__file__).resolve().parents[1]) + os.sep


def warn(state: Any, message: str) -> None:
    """A :class:`BpcoreWarning` pointing at the caller's line outside bpcore, once per run (not per process)."""
    if not state.is_main_process:
        return
    level = 2  # stacklevel 2 is warn's caller
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, BpcoreWarning, stacklevel=level)
