"""The one finetuning loop every task uses, built on Accelerate.

It runs unchanged on one CPU, one GPU, or several processes started by ``accelerate launch``.
"""

from __future__ import annotations

import math
import operator
import random
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import attrs
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from bpcore.errors import BpcoreError, InputError, InputTypeError, TrainingError
from bpcore.samplers import has_triplet

Step = Callable[[Any, int], torch.Tensor]
MakeBatchSampler = Callable[[Sequence[int], int, int], Sampler]


class BpcoreWarning(UserWarning):
    """Something worth knowing about a finetuning run (e.g. it validated on its training data)."""


@attrs.frozen
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float


@attrs.define
class History:
    """What :func:`fit` did: the losses of each epoch and how it validated.

    ``validated_on`` is ``"validation split"``, ``"validation dataloader"`` or, when the data
    was too small to hold any out, ``"training data"``.
    """

    epochs: list[EpochRecord] = attrs.field(factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    validated_on: str = "validation split"
    batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    seed: int | None = None

    @property
    def train_loss(self) -> list[float]:
        return [record.train_loss for record in self.epochs]

    @property
    def val_loss(self) -> list[float]:
        return [record.val_loss for record in self.epochs]

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def __len__(self) -> int:
        return len(self.epochs)


def split_indices(
    count: int,
    validation_split: float | tuple[Sequence[int], Sequence[int]],
    seed: int,
    groups: Sequence[Hashable] | None = None,
) -> tuple[list[int], list[int]]:
    """Training and validation indices from a fraction or from explicit index lists.

    With ``groups`` (triplet finetuning) a fraction is split by group
    (:func:`bpcore.samplers.group_split`): the validation part gets same-group pairs of at
    least two groups, and the training part keeps every group; when the data cannot give
    that, nothing is held out. Explicit index lists are used as given.
    """
    check_validation_split(validation_split, count)
    if isinstance(validation_split, (tuple, list)):
        train, val = ([operator.index(i) for i in part] for part in validation_split)
        return train, val
    if groups is not None:
        from bpcore.samplers import group_split

        if len(groups) != count:
            raise InputError(f"{len(groups)} groups for {count} examples", field="groups")
        return group_split(groups, validation_split, seed)
    order = list(range(count))
    random.Random(seed).shuffle(order)
    val_count = int(count * validation_split)
    return order[val_count:], order[:val_count]


_INDEX_LISTS = (list, tuple, range)


def check_validation_split(validation_split: Any, count: int | None = None) -> None:
    """``validation_split`` is a fraction in [0, 1) or ``(train_indices, val_indices)`` of ints below ``count``."""
    field = "validation_split"
    usage = "must be a fraction in [0, 1) or a pair (train_indices, val_indices)"
    if isinstance(validation_split, (tuple, list)):
        if len(validation_split) != 2:
            raise InputError(f"{usage}; got a sequence of {len(validation_split)}", field=field)
        for name, part in zip(("train_indices", "val_indices"), validation_split):
            if not isinstance(part, _INDEX_LISTS):
                raise InputTypeError(
                    f"expected a list of example indices, got {type(part).__name__}", field=f"{field}.{name}"
                )
            for position, index in enumerate(part):
                if isinstance(index, bool) or not hasattr(index, "__index__"):
                    raise InputTypeError(
                        f"item {position} is {type(index).__name__} {index!r:.40}, not an integer index",
                        field=f"{field}.{name}",
                    )
                if count is not None and not 0 <= operator.index(index) < count:
                    raise InputError(
                        f"index {index} (item {position}) is outside the {count} examples",
                        field=f"{field}.{name}",
                    )
        if not len(validation_split[0]):
            raise InputError("no training indices", field=f"{field}.train_indices")
        return
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)):
        raise InputTypeError(f"{usage}; got {type(validation_split).__name__}", field=field)
    if not 0 <= validation_split < 1:  # also refuses NaN
        raise InputError(f"must be in [0, 1), got {validation_split}", field=field)


def _check_integer(value: Any, field: str, low: int, optional: bool = False, high: int | None = None) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        expected = "an integer" + (" or None" if optional else "")
        raise InputTypeError(f"expected {expected}, got {type(value).__name__} {value!r:.40}", field=field)
    if value < low or (high is not None and value >= high):
        bound = f">= {low}" if high is None else f"in [{low}, {high})"
        raise InputError(f"must be an integer {bound}, got {value}", field=field)


def _is_batch_iterable(value: Any) -> bool:
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping))


def check_fit_options(
    *,
    validation_split: Any = 0.15,
    epochs: Any = 20,
    batch_size: Any = None,
    optimal_batch_size: Any = None,
    early_stopping_epochs: Any = 1,
    train_dataloader: Any = None,
    val_dataloader: Any = None,
    step: Any = None,
    configure_optimizers: Any = None,
    seed: Any = None,
    progress: Any = None,
    count: int | None = None,
) -> None:
    """Check every keyword of :func:`fit` (and of a task's ``finetune``) before any training step.

    Raises :class:`~bpcore.InputError` (or :class:`~bpcore.InputTypeError`) naming the keyword.
    ``count`` (the number of examples) also checks explicit validation indices.
    """
    check_validation_split(validation_split, count)
    _check_integer(epochs, "epochs", 1)
    _check_integer(early_stopping_epochs, "early_stopping_epochs", 0)
    _check_integer(batch_size, "batch_size", 1, optional=True)
    _check_integer(optimal_batch_size, "optimal_batch_size", 1, optional=True)
    _check_integer(seed, "seed", 0, optional=True, high=2**32)
    if progress is not None and not isinstance(progress, bool):
        raise InputTypeError(f"expected true, false or None, got {type(progress).__name__}", field="progress")
    for name, function in (("step", step), ("configure_optimizers", configure_optimizers)):
        if function is not None and not callable(function):
            raise InputTypeError(f"expected a function, got {type(function).__name__}", field=name)
    for name, loader in (("train_dataloader", train_dataloader), ("val_dataloader", val_dataloader)):
        if loader is not None and not _is_batch_iterable(loader):
            raise InputTypeError(
                f"expected a DataLoader (or another iterable of batches), got {type(loader).__name__}",
                field=name,
            )


def _as_loss(loss: Any, where: str) -> torch.Tensor:
    """The step's result as a 0-dim float tensor, or a :class:`TrainingError` saying what it was."""
    what = "the step (the model's training_step and the task's loss, or your step=)"
    if not isinstance(loss, torch.Tensor):
        raise TrainingError(
            f"{what} returned {type(loss).__name__} in {where}; it must return the batch's loss "
            "as a scalar torch.Tensor"
        )
    if loss.numel() != 1 or not loss.is_floating_point():
        raise TrainingError(
            f"{what} returned a {loss.dtype} tensor of shape {tuple(loss.shape)} in {where}; "
            "it must return the batch's loss as a scalar float tensor"
        )
    return loss.reshape(())


def _out_of_memory(error: BaseException) -> bool:
    from accelerate.utils.memory import should_reduce_batch_size

    return isinstance(error, Exception) and should_reduce_batch_size(error)


class _StepModule(torch.nn.Module):
    # Accelerate (and DDP under it) only syncs gradients for work done inside a prepared
    # module's forward, so the step runs as this wrapper's forward.
    def __init__(self, model: torch.nn.Module, step: Step):
        super().__init__()
        self.model = model
        self.step = step

    def forward(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.step(batch, batch_idx)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()}


def _check_finite(loss: torch.Tensor, what: str) -> None:
    if not torch.isfinite(loss.detach()).all():
        raise TrainingError(
            f"the {what} became {float(loss.detach())}: lower the learning rate or check the data"
        )


def _train_epoch(accelerator: Any, wrapper: Any, optimizer: Any, loader: Any, epoch: int) -> float:
    wrapper.train()
    losses = []
    for batch_idx, batch in enumerate(loader):
        with accelerator.accumulate(wrapper):
            where = f"epoch {epoch}, batch {batch_idx}"
            loss = _as_loss(wrapper(batch, batch_idx), where)
            _check_finite(loss, f"training loss in {where}")
            if loss.requires_grad:
                accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        losses.append(loss.detach())
    return _mean(accelerator, losses)


def _validate(accelerator: Any, wrapper: Any, loader: Any, epoch: int) -> float:
    """The mean validation loss, over the batches whose loss measured something.

    A batch whose triplet loss formed no triplet (see :func:`bpcore.losses.scoring_triplets`)
    scores 0 without measuring anything: it is left out. When every batch is left out, the
    result is NaN and the epoch cannot count as an improvement.
    """
    from bpcore.losses import scoring_triplets

    wrapper.eval()
    losses = []
    with torch.no_grad():
        for batch_idx, batch in enumerate(loader):
            with scoring_triplets() as count:
                loss = _as_loss(wrapper(batch, batch_idx), f"validation of epoch {epoch}, batch {batch_idx}")
                loss = loss.detach()
            _check_finite(loss, f"validation loss in epoch {epoch}, batch {batch_idx}")
            # NaN marks a batch that measured nothing; every process gathers as many batches.
            losses.append(torch.full_like(loss.float().reshape(()), math.nan) if count.formed_none else loss)
    if not losses:
        return math.nan
    stacked = torch.stack([loss.float().reshape(()) for loss in losses]).to(accelerator.device)
    gathered = accelerator.gather_for_metrics(stacked)
    measured = gathered[~torch.isnan(gathered)]
    return float(measured.mean()) if measured.numel() else math.nan


def _mean(accelerator: Any, losses: list[torch.Tensor]) -> float:
    if not losses:
        return math.nan
    stacked = torch.stack([loss.float().reshape(()) for loss in losses]).to(accelerator.device)
    return float(accelerator.gather_for_metrics(stacked).mean())


def _with_triplets(batches: list[list[int]], groups: Sequence[Hashable]) -> list[list[int]]:
    """Validation batches merged forward until each can form a triplet (where the data allows)."""
    merged: list[list[int]] = []
    pending: list[int] = []
    for batch in batches:
        pending = pending + list(batch)
        if has_triplet(groups[i] for i in pending):
            merged.append(pending)
            pending = []
    if pending:
        if merged:
            merged[-1] = merged[-1] + pending
        else:
            merged.append(pending)
    return merged


def fit(
    model: torch.nn.Module,
    dataset: Dataset | Sequence[Any],
    *,
    step: Step,
    configure_optimizers: Callable[[], torch.optim.Optimizer],
    collate_fn: Callable[[list[Any]], Any] | None = None,
    make_batch_sampler: MakeBatchSampler | None = None,
    validation_split: float | tuple[Sequence[int], Sequence[int]] = 0.15,
    epochs: int = 20,
    batch_size: int | None = None,
    optimal_batch_size: int | None = None,
    early_stopping_epochs: int = 1,
    train_dataloader: DataLoader | None = None,
    val_dataloader: DataLoader | None = None,
    seed: int | None = None,
    groups: Sequence[Hashable] | None = None,
    cpu: bool = False,
    progress: bool | None = None,
) -> History:
    """Finetune ``model`` on ``dataset`` and return the :class:`History`.

    ``step(batch, batch_idx)`` returns the loss of a batch. After training the weights of
    the epoch with the best validation loss are loaded back. With ``batch_size=None`` the
    batch starts at ``optimal_batch_size`` (at most the data size) and shrinks on
    out-of-memory errors, and gradients accumulate so that each optimizer step still sees
    about as many examples.

    ``groups[i]`` is the group of example ``i`` for triplet finetuning: a fractional split
    then holds out by group (see :func:`split_indices`), and a validation part on which no
    triplet exists (fewer than two groups, or no same-group pair) is not used: the run
    validates on the training data and says so. Validation batches that form no triplet are
    merged with the next batch, and a validation loss that measured no triplet never counts
    as an improvement.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, find_executable_batch_size, set_seed
    from tqdm.auto import tqdm

    check_fit_options(
        validation_split=validation_split,
        epochs=epochs,
        batch_size=batch_size,
        optimal_batch_size=optimal_batch_size,
        early_stopping_epochs=early_stopping_epochs,
        train_dataloader=train_dataloader,
        val_dataloader=val_dataloader,
        step=step,
        configure_optimizers=configure_optimizers,
        seed=seed,
        progress=progress,
        count=len(dataset),  # type: ignore[arg-type]
    )

    seed = random.randrange(2**31) if seed is None else seed
    set_seed(seed)
    history = History(seed=seed)

    train_indices, val_indices = split_indices(len(dataset), validation_split, seed, groups)  # type: ignore[arg-type]
    if val_dataloader is not None:
        history.validated_on = "validation dataloader"
    else:
        reason = None
        if train_dataloader is not None:
            reason = "a custom train_dataloader comes without validation data"
        elif not val_indices:
            reason = (
                "holds no same-group pairs of two groups to validate triplets on"
                if groups is not None and validation_split
                else "holds nothing to validate on"
            )
        elif groups is not None and not has_triplet(groups[i] for i in val_indices):
            reason = "holds no triplet (it needs two groups, one with a same-group pair)"
        if reason is not None:
            history.validated_on = "training data"
            warnings.warn(
                f"the validation split ({validation_split!r} of {len(dataset)} examples) {reason}: "  # type: ignore[arg-type]
                "validating on the training data, so early stopping only sees the training loss",
                BpcoreWarning,
                stacklevel=4,
            )
            val_indices = train_indices

    optimal: int = optimal_batch_size or getattr(model, "optimal_batch_size", 16)
    start_batch_size = min(batch_size or optimal, len(train_indices))

    def loaders(size: int) -> tuple[DataLoader, DataLoader]:
        def make(indices: Sequence[int], shuffle: bool, part_seed: int) -> DataLoader:
            subset = Subset(dataset, list(indices))
            if make_batch_sampler is not None:
                sampler = make_batch_sampler(indices, size, part_seed)
                # Validation batches stay the same every epoch, so in-batch losses compare across epochs.
                batches = sampler if shuffle else list(sampler)
                if not shuffle and groups is not None:
                    batches = _with_triplets(batches, [groups[i] for i in indices])
                return DataLoader(subset, batch_sampler=batches, collate_fn=collate_fn)
            generator = torch.Generator().manual_seed(part_seed)
            return DataLoader(
                subset, batch_size=size, shuffle=shuffle, collate_fn=collate_fn, generator=generator
            )

        train = train_dataloader if train_dataloader is not None else make(train_indices, True, seed)
        val = (
            val_dataloader
            if val_dataloader is not None
            else (train if train_dataloader is not None else make(val_indices, False, seed + 1))
        )
        return train, val

    def run(size: int) -> History:
        # When out-of-memory errors shrink the batch, accumulate to keep the step size.
        accumulation = max(1, round(start_batch_size / size))
        accelerator = Accelerator(
            cpu=cpu,
            gradient_accumulation_steps=accumulation,
            # Models often hold weights a task's loss never reaches (e.g. BERT's pooler);
            # without this, several processes wait forever for their gradients.
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        history.batch_size, history.gradient_accumulation_steps = size, accumulation
        history.epochs.clear()
        train_loader, val_loader = loaders(size)
        wrapper = _StepModule(model, step)
        try:
            optimizer = configure_optimizers()
        except BpcoreError:
            raise
        except Exception as error:
            raise TrainingError(
                f"configure_optimizers failed ({type(error).__name__}: {error})", history
            ) from error
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InputTypeError(
                f"returned {type(optimizer).__name__}; it must return a torch.optim.Optimizer",
                field="configure_optimizers",
            )
        wrapper, optimizer, train_loader, val_loader = accelerator.prepare(
            wrapper, optimizer, train_loader, val_loader
        )
        # Until an epoch validates, the best weights are the ones we started from.
        best_loss, best_state, epochs_without_gain = math.inf, _snapshot(model), 0
        quiet = progress is False or not accelerator.is_local_main_process
        # disable=None lets tqdm hide itself when output is not a terminal.
        bar = tqdm(
            range(1, epochs + 1),
            desc="finetuning",
            unit="epoch",
            disable=True if quiet else (None if progress is None else False),
        )
        try:
            for epoch in bar:
                if hasattr(train_loader, "set_epoch"):
                    train_loader.set_epoch(epoch - 1)
                train_loss = _train_epoch(accelerator, wrapper, optimizer, train_loader, epoch)
                record = EpochRecord(epoch, train_loss, _validate(accelerator, wrapper, val_loader, epoch))
                history.epochs.append(record)
                bar.set_postfix(train_loss=f"{record.train_loss:.4f}", val_loss=f"{record.val_loss:.4f}")
                # NaN (no validation batch formed a triplet) is never an improvement.
                if record.val_loss < best_loss:
                    best_loss, epochs_without_gain, history.best_epoch = record.val_loss, 0, epoch
                    best_state = _snapshot(model)
                else:
                    epochs_without_gain += 1
                    if early_stopping_epochs and epochs_without_gain >= early_stopping_epochs:
                        history.stopped_early = epoch < epochs
                        break
        except BpcoreError as error:
            error.history = history  # type: ignore[attr-defined]
            raise
        except Exception as error:
            if _out_of_memory(error):
                raise  # find_executable_batch_size retries with a smaller batch
            raise TrainingError(
                f"finetuning failed in epoch {len(history.epochs) + 1} ({type(error).__name__}: {error})",
                history,
            ) from error
        finally:
            # Also on errors and Ctrl-C: the model is left at its best weights, never half-trained.
            bar.close()
            model.load_state_dict(best_state)
            model.eval()
            accelerator.free_memory()
        return history

    if batch_size is None and train_dataloader is None:
        try:
            return find_executable_batch_size(run, starting_batch_size=start_batch_size)()
        except BpcoreError:
            raise
        except Exception as error:  # even a batch of one does not fit in memory
            raise TrainingError(f"finetuning ran out of memory ({error})", history) from error
    return run(start_batch_size)
