"""Batch samplers for finetuning."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Iterator, Sequence

from torch.utils.data import Sampler


class GroupBatchSampler(Sampler[list[int]]):
    """Batches in which every item of a group with two or more members has a same-group partner.

    Triplet losses need a positive beside each anchor. pytorch-metric-learning's
    ``MPerClassSampler`` does this for large data but needs ``batch_size`` to divide evenly
    into classes and samples with replacement; here every item appears exactly once an epoch,
    whatever the group sizes, so the spec's three-item examples work.

    Each epoch, a group's shuffled members are cut into chunks of two (three when odd); chunks
    are shuffled and packed into batches without splitting a chunk. Members of single-item
    groups fill the remaining room as negatives.
    """

    def __init__(self, groups: Sequence[Hashable], batch_size: int, seed: int = 0):
        if batch_size < 2:
            raise ValueError("a group batch needs room for an anchor and its positive: batch_size >= 2")
        self.groups = list(groups)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _chunks(self, rng: random.Random) -> tuple[list[list[int]], list[int]]:
        members: dict[Hashable, list[int]] = defaultdict(list)
        for index, group in enumerate(self.groups):
            members[group].append(index)
        chunks, singles = [], []
        for indices in members.values():
            rng.shuffle(indices)
            if len(indices) == 1:
                singles.extend(indices)
                continue
            size = min(2, self.batch_size)
            group_chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
            if len(group_chunks[-1]) == 1:
                group_chunks[-2].extend(group_chunks.pop())
            chunks.extend(group_chunks)
        rng.shuffle(chunks)
        rng.shuffle(singles)
        return chunks, singles

    def _plan(self, epoch: int) -> list[list[int]]:
        chunks, singles = self._chunks(random.Random(self.seed + epoch))
        batches: list[list[int]] = []
        current: list[int] = []
        for chunk in chunks:
            if current and len(current) + len(chunk) > self.batch_size:
                batches.append(current)
                current = []
            current.extend(chunk)
        if current:
            batches.append(current)
        # Single-member groups only ever serve as negatives: top up the batches with them.
        for batch in batches:
            while singles and len(batch) < self.batch_size:
                batch.append(singles.pop())
        while singles:
            batches.append([singles.pop() for _ in range(min(self.batch_size, len(singles)))])
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._plan(self.epoch)
        self.epoch += 1
        yield from batches

    def __len__(self) -> int:
        return len(self._plan(self.epoch))
