"""How the loop cuts the data: the validation split, each epoch's batches, each process's loaders."""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import attrs

from bpcore.errors import InputError
from bpcore.training.options import ValidationSplit, check_validation_split
from bpcore.training.samplers import has_triplet

#: ``plan(epoch)``: an epoch's batches (0-based epochs), as lists of indices.
Plan = Callable[[int], list[list[int]]]
#: ``make_batch_plan(indices, batch_size, seed)`` gives ``plan(epoch)``: the epoch's batches, as positions in ``indices``.
MakeBatchPlan = Callable[[Sequence[int], int, int], Plan]


def split_indices(
    count: int,
    validation_split: ValidationSplit,
    seed: int,
    groups: Sequence[Hashable] | None = None,
) -> tuple[list[int], list[int]]:
    """Training and validation indices from a fraction or from explicit index lists.

    ``count`` is the number of examples; ``validation_split`` the fraction held out for
    validation, or ``(train_indices, val_indices)``; ``seed`` shuffles a fractional split the
    same way in every run. With ``groups`` (triplet finetuning) a fraction is split by group
    (:func:`bpcore.training.samplers.group_split`): the validation part gets same-group pairs
    of at least two groups, and the training part keeps every group; when the data cannot
    give that, nothing is held out. Explicit index lists are used as given.
    """
    check_validation_split(validation_split, count)
    if isinstance(validation_split, (tuple, list)):
        train, val = ([operator.index(i) for i in part] for part in validation_split)
        return train, val
    if groups is not None:
        from bpcore.training.samplers import group_split

        if len(groups) != count:
            raise InputError(f"{len(groups)} groups for {count} examples", field="groups")
        return group_split(groups, validation_split, seed)
    order = list(range(count))
    random.Random(seed).shuffle(order)
    val_count = int(count * validation_split)
    return order[val_count:], order[:val_count]


def unusable_validation(
    val_indices: Sequence[int],
    groups: Sequence[Hashable] | None,
    validation_split: Any,
    train_dataloader: Any,
) -> str | None:
    """Why the validation part cannot be validated on (the run then validates on its training
    data), or None when it can."""
    if train_dataloader is not None:
        return "a custom train_dataloader comes without validation data"
    if not val_indices:
        if groups is not None and validation_split:
            return "holds no same-group pairs of two groups to validate triplets on"
        return "holds nothing to validate on"
    if groups is not None and not has_triplet(groups[i] for i in val_indices):
        return "holds no triplet (it needs two groups, one with a same-group pair)"
    return None


def with_triplets(batches: list[list[int]], groups: Sequence[Hashable]) -> list[list[int]]:
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


@attrs.frozen
class _Fixed:
    """The same batches every epoch (validation: its losses compare across epochs)."""

    batches: list[list[int]]

    def __call__(self, epoch: int) -> list[list[int]]:
        return self.batches


@attrs.frozen
class _Indexed:
    """``positions``' batches of positions in ``indices``, as indices of the data."""

    indices: Sequence[int]
    positions: Plan

    def __call__(self, epoch: int) -> list[list[int]]:
        return [[self.indices[position] for position in batch] for batch in self.positions(epoch)]


def epoch_plan(
    indices: Sequence[int],
    size: int,
    seed: int,
    shuffle: bool,
    make_batch_plan: MakeBatchPlan | None = None,
    groups: Sequence[Hashable] | None = None,
) -> Plan:
    """``plan(epoch)``: the batches of ``indices`` in each epoch.

    Training batches (``shuffle``) change with the epoch; validation batches stay the same. A
    ``make_batch_plan`` (triplets: batches that keep groups together) replaces the shuffle, and
    with ``groups`` each validation batch is merged forward until it can form a triplet.
    """
    positions: Plan
    if make_batch_plan is not None:
        positions = make_batch_plan(indices, size, seed)
        if not shuffle:
            fixed = positions(0)
            if groups is not None:
                fixed = with_triplets(fixed, [groups[i] for i in indices])
            positions = _Fixed(fixed)
    elif shuffle:
        positions = _Shuffled(len(indices), size, seed)
    else:
        positions = _Fixed(
            [list(range(i, min(i + size, len(indices)))) for i in range(0, len(indices), size)]
        )
    return _Indexed(indices, positions)


@attrs.frozen
class _Shuffled:
    count: int
    size: int
    seed: int

    def __call__(self, epoch: int) -> list[list[int]]:
        from bpcore.training.samplers import shuffled_batches

        return shuffled_batches(self.count, self.size, self.seed, epoch)


def process_loader(dataset: Any, plan: Plan, state: Any, collate_fn: Any) -> Any:
    """A loader of this process's share of every batch ``plan`` gives (see :class:`ProcessShard`)."""
    from accelerate.data_loader import DataLoaderShard

    from bpcore.training.samplers import ProcessShard

    sampler = ProcessShard(plan, state.process_index, state.num_processes)
    return DataLoaderShard(dataset, device=state.device, batch_sampler=sampler, collate_fn=collate_fn)


def set_epoch(loader: Any, epoch: int) -> None:
    """Tell ``loader`` (or its batch sampler) which epoch (0-based) comes; Accelerate's loaders pass it on."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    elif hasattr(getattr(loader, "batch_sampler", None), "set_epoch"):
        loader.batch_sampler.set_epoch(epoch)
