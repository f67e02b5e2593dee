"""Spec 8.7, ``backprop.utils.samplers``: batches for triplet losses, from a group dataset."""

from __future__ import annotations

from collections.abc import Hashable, Sized
from typing import Any

from bpcore.errors import InputError
from bpcore.training.samplers import GroupBatchSampler

__all__ = ["SameGroupSampler"]


class SameGroupSampler(GroupBatchSampler):
    """Batches of indices of ``dataset`` in which each member of a group of two or more has a partner.

    A triplet loss needs a same-group positive beside each anchor, which random batches often
    lack. The groups come from ``dataset.groups`` (one per item, as the group datasets
    of :mod:`bpcore.utils.datasets` keep them). Every index appears exactly once an epoch;
    each new iteration is a new epoch, shuffled anew from ``seed``. It yields lists of
    indices, so it goes to a ``DataLoader`` as ``batch_sampler``. A group is never split into a
    lone member: with ``batch_size=2``, a group of odd size gives one batch of three.

    Example::

        from torch.utils.data import DataLoader

        loader = DataLoader(dataset, batch_sampler=SameGroupSampler(dataset, batch_size=16))
        for batch in loader:
            ...
    """

    def __init__(self, dataset: Any, batch_size: int = 16, seed: int = 0):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise InputError(
                f"must be an int of at least 2 (an anchor and its positive), not {batch_size!r}",
                field="batch_size",
            )
        super().__init__(_groups_of(dataset), batch_size=batch_size, seed=seed)


def _groups_of(dataset: Any) -> list[Hashable]:
    """``dataset.groups`` as a list of hashable labels, one per item of ``dataset``."""
    groups = getattr(dataset, "groups", None)
    if groups is None:
        raise InputError(
            f"a {type(dataset).__name__} has no groups: SameGroupSampler needs a dataset with "
            "a `groups` attribute, one group label per item",
            field="dataset.groups",
        )
    # A tensor's elements are 0-d tensors, which hash by identity: compare their values.
    labels = list(groups.tolist() if hasattr(groups, "tolist") else groups)
    if isinstance(dataset, Sized) and len(labels) != len(dataset):
        raise InputError(f"has {len(labels)} labels for {len(dataset)} items", field="dataset.groups")
    for index, label in enumerate(labels):
        if not isinstance(label, Hashable):
            raise InputError(
                f"is a {type(label).__name__}, not a group label", field=f"dataset.groups[{index}]"
            )
    return labels
