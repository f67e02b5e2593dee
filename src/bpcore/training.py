"""The one finetuning loop every task uses, built on Accelerate.

It runs unchanged on one CPU, one GPU, or several processes started by ``accelerate launch``.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import attrs
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from bpcore.errors import InputError, TrainingError
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
    if isinstance(validation_split, (tuple, list)):
        if len(validation_split) != 2:
            raise InputError("must be a fraction or (train_indices, val_indices)", field="validation_split")
        train, val = ([int(i) for i in part] for part in validation_split)
        for name, part in (("train_indices", train), ("val_indices", val)):
            bad = [i for i in part if not 0 <= i < count]
            if bad:
                raise InputError(
                    f"index {bad[0]} is outside the {count} examples", field=f"validation_split.{name}"
                )
        if not train:
            raise InputError("no training indices", field="validation_split.train_indices")
        return train, val
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)):
        raise InputError("must be a fraction or (train_indices, val_indices)", field="validation_split")
    if not 0 <= validation_split < 1:
        raise InputError(f"must be in [0, 1), got {validation_split}", field="validation_split")
    if groups is not None:
        from bpcore.samplers import group_split

        if len(groups) != count:
            raise InputError(f"{len(groups)} groups for {count} examples", field="groups")
        return group_split(groups, validation_split, seed)
    order = list(range(count))
    random.Random(seed).shuffle(order)
    val_count = int(count * validation_split)
    return order[val_count:], order[:val_count]


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
            loss = wrapper(batch, batch_idx)
            _check_finite(loss, f"training loss in epoch {epoch}, batch {batch_idx}")
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
                loss = wrapper(batch, batch_idx).detach()
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

    for name, value, low in (("epochs", epochs, 1), ("early_stopping_epochs", early_stopping_epochs, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"must be an integer >= {low}, got {value!r}", field=name)
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise InputError(f"must be a positive integer, got {batch_size!r}", field="batch_size")

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

        train = train_dataloader or make(train_indices, True, seed)
        val = val_dataloader or (
            train if train_dataloader is not None else make(val_indices, False, seed + 1)
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
        optimizer = configure_optimizers()
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
        finally:
            # Also on errors and Ctrl-C: the model is left at its best weights, never half-trained.
            bar.close()
            model.load_state_dict(best_state)
            model.eval()
            accelerator.free_memory()
        return history

    if batch_size is None and train_dataloader is None:
        return find_executable_batch_size(run, starting_batch_size=start_batch_size)()
    return run(start_batch_size)
