"""Batch samplers and group-aware splits for finetuning."""

from __future__ import annotations

import heapq
import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence

from torch.utils.data import Sampler


def has_triplet(groups: Iterable[Hashable]) -> bool:
    """Whether ``groups`` allow a triplet: two different groups, one of them with two members."""
    seen: set[Hashable] = set()
    pair = False
    for group in groups:
        pair = pair or group in seen
        seen.add(group)
    return pair and len(seen) >= 2


def _members(groups: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    return members


def group_split(groups: Sequence[Hashable], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Training and validation indices for triplet finetuning, stratified over the groups.

    About ``fraction`` of the examples are held out, spread over the groups in proportion to
    their size, but in same-group pairs and over at least two groups, so the validation part
    can form triplets (it holds at least four examples). Every group keeps members in the
    training part (two when it has four or more). When fewer than two groups can spare a
    pair that way, whole two-member groups may be held out instead, as long as the training
    part can still form a triplet. When even that is impossible (or ``fraction`` is 0),
    nothing is held out: the validation list is empty.
    """
    everything = list(range(len(groups)))
    if fraction <= 0:
        return everything, []
    rng = random.Random(seed)
    members = _members(groups)
    names = list(members)
    rng.shuffle(names)  # ties between groups are broken at random
    for name in names:
        rng.shuffle(members[name])
    sizes = {name: len(members[name]) for name in names}
    target = max(int(len(groups) * fraction), 4)
    # The training part keeps every group: two members when it has four or more, else one.
    spare = {name: size - (2 if size >= 4 else 1) if size >= 3 else 0 for name, size in sizes.items()}
    quota = _allocate(names, sizes, fraction, target, spare)
    if not quota:
        # Too few large groups: hold out whole pairs too, if the training part still forms a triplet.
        spare = {name: size if size == 2 else size - 1 for name, size in sizes.items()}
        quota = _allocate(names, sizes, fraction, target, spare)
    val = sorted(index for name, count in quota.items() for index in members[name][:count])
    train = sorted(set(everything) - set(val))
    if not val or not has_triplet(groups[index] for index in train):
        return everything, []
    return train, val


def _allocate(
    names: list[Hashable],
    sizes: dict[Hashable, int],
    fraction: float,
    target: int,
    spare: dict[Hashable, int],
) -> dict[Hashable, int]:
    """How many members of each group to hold out (at most ``spare[name]``): about ``target`` in
    all, the groups furthest below their share of ``fraction`` first; {} when fewer than two
    groups can spare a pair."""
    quota = dict.fromkeys(names, 0)

    def joining(name: Hashable) -> int:
        return 2 if quota[name] == 0 else 1  # a group joins the validation part with a pair

    for picked in range(target):
        open_ = [name for name in names if quota[name] + joining(name) <= spare[name]]
        if picked < 2:  # first, pairs from two different groups
            open_ = [name for name in open_ if quota[name] == 0]
            if not open_:
                return {}
        if not open_ or sum(quota.values()) >= target:
            break
        best = max(open_, key=lambda name: fraction * sizes[name] - quota[name])
        quota[best] += joining(best)
    return quota


class GroupBatchSampler(Sampler[list[int]]):
    """Batches in which every item of a group with two or more members has a same-group partner.

    Triplet losses need a positive beside each anchor. pytorch-metric-learning's
    ``MPerClassSampler`` does this for large data but needs ``batch_size`` to divide evenly
    into classes and samples with replacement; here every item appears exactly once an epoch,
    whatever the group sizes, so the spec's three-item examples work.

    Each epoch, a group's shuffled members are cut into chunks of two (three when odd); the
    chunks of different groups are interleaved (largest group first, ties at random) and
    packed into batches without splitting a chunk, so a batch with room for two chunks holds
    two groups and can form a triplet. Members of single-item groups fill the remaining room
    as negatives.
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
        """Each group's shuffled members in chunks of two (three when odd), ordered so that
        consecutive chunks come from different groups wherever the group sizes allow it."""
        per_group, singles = [], []
        for indices in _members(self.groups).values():
            rng.shuffle(indices)
            if len(indices) == 1:
                singles.extend(indices)
                continue
            size = min(2, self.batch_size)
            group_chunks = [indices[i : i + size] for i in range(0, len(indices), size)]
            if len(group_chunks[-1]) == 1:
                group_chunks[-2].extend(group_chunks.pop())
            per_group.append(group_chunks)
        # Largest remaining group first (ties at random), never the same group twice in a row
        # when another is left: a batch of one group forms no triplet.
        heap = [(-len(chunks), rng.random(), number) for number, chunks in enumerate(per_group)]
        heapq.heapify(heap)
        ordered: list[list[int]] = []
        previous = None
        while heap:
            entry = heapq.heappop(heap)
            if entry[2] == previous and heap:
                entry = heapq.heapreplace(heap, entry)
            remaining, _, number = entry
            ordered.append(per_group[number].pop())
            previous = number
            if remaining + 1 < 0:
                heapq.heappush(heap, (remaining + 1, rng.random(), number))
        rng.shuffle(singles)
        return ordered, singles

    def plan(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch`` (0-based): the same for the same seed and epoch."""
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
        batches = self.plan(self.epoch)
        self.epoch += 1
        yield from batches

    def __len__(self) -> int:
        return len(self.plan(self.epoch))


def group_batch_plan(
    groups: Sequence[Hashable], indices: Sequence[int], batch_size: int, seed: int
) -> Callable[[int], list[list[int]]]:
    """``plan(epoch)``: :class:`GroupBatchSampler`'s batches of the examples ``indices`` (positions
    in ``indices``), whose groups ``groups`` gives for every example of the data."""
    return GroupBatchSampler([groups[i] for i in indices], batch_size=max(2, batch_size), seed=seed).plan


def shuffled_batches(count: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Batches of ``range(count)`` shuffled from ``seed`` and ``epoch`` alone.

    The order of an epoch does not depend on the epochs before it, so a run resumed from a
    checkpoint sees the batches an uninterrupted run would.
    """
    order = list(range(count))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


class ProcessShard(Sampler[list[int]]):
    """This process's share of each batch ``plan(epoch)`` gives, in a run of ``num_processes``.

    Each batch is cut into ``num_processes`` contiguous parts whose sizes differ by at most
    one, so every process takes a step on every batch and the processes together see exactly
    the batches one process would: a run's result does not depend on how many processes ran
    it. A batch smaller than ``num_processes`` joins the batch before it. ``set_epoch``
    chooses the epoch (0-based) whose batches are given.
    """

    def __init__(
        self, plan: Callable[[int], list[list[int]]], process_index: int = 0, num_processes: int = 1
    ):
        self.plan, self.process_index, self.num_processes = plan, process_index, num_processes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def whole_batches(self) -> list[list[int]]:
        """The epoch's batches, before they are shared out."""
        whole: list[list[int]] = []
        for batch in self.plan(self.epoch):
            if whole and len(batch) < self.num_processes:
                whole[-1] = whole[-1] + list(batch)
            else:
                whole.append(list(batch))
        return whole

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.whole_batches():
            start = self.process_index * len(batch) // self.num_processes
            end = (self.process_index + 1) * len(batch) // self.num_processes
            yield batch[start:end]

    def __len__(self) -> int:
        return len(self.whole_batches())
