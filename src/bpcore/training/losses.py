"""Losses of spec chapter 8, for embeddings the core computes from a model's ``training_step``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import attrs
import torch
import torch.nn.functional as F


@attrs.define
class TripletCount:
    """What the triplet losses called inside :func:`scoring_triplets` saw: calls and triplets scored."""

    calls: int = 0
    triplets: int = 0

    @property
    def formed_none(self) -> bool:
        """A triplet loss was called, but found no triplet (its 0 measures nothing)."""
        return self.calls > 0 and self.triplets == 0


_SCORING: ContextVar[TripletCount | None] = ContextVar("bpcore_triplet_scoring", default=None)


@contextmanager
def scoring_triplets() -> Iterator[TripletCount]:
    """Evaluate triplet losses: score every triplet, and count them.

    Inside this block :class:`TripletSemiHardLoss` mines nothing: it averages the loss over
    every (anchor, positive, negative) triplet of the batch, so losses of different epochs
    measure the same thing (mined triplets change as the model learns). The yielded
    :class:`TripletCount` adds up how many triplets the calls scored; a batch with a single
    group or without a same-group pair has none, and its loss of 0 says nothing. The
    finetuning loop validates this way.

    Example::

        with scoring_triplets() as count:
            loss = TripletSemiHardLoss()(embeddings, groups)
        if count.formed_none:
            ...  # no triplet in this batch: do not use ``loss``
    """
    count = TripletCount()
    token = _SCORING.set(count)
    try:
        yield count
    finally:
        _SCORING.reset(token)


class TripletSemiHardLoss(torch.nn.Module):
    """Triplet loss with semi-hard negative mining (FaceNet, https://arxiv.org/abs/1503.03832).

    For each anchor-positive pair, negatives farther than the positive but within ``margin``
    are used; when a batch has none, hard negatives (closer than the positive) are used, so
    small batches still learn. Distances are Euclidean between L2-normalised embeddings.
    Inside :func:`scoring_triplets` (validation) it averages over all triplets instead.
    ``last_triplet_count`` is the number of triplets the last call used: 0 means the
    returned loss is 0 because no triplet was formed.

    Example::

        loss = TripletSemiHardLoss()(embeddings, torch.tensor([0, 0, 1, 1]))
    """

    def __init__(self, margin: float = 1.0):
        # Imported here: pytorch-metric-learning imports scipy.stats (seconds), which runs
        # that do not mine triplets never need.
        from pytorch_metric_learning import distances, losses, miners, reducers

        super().__init__()
        distance = distances.LpDistance(normalize_embeddings=True, p=2)
        self.semihard = miners.TripletMarginMiner(
            margin=margin, type_of_triplets="semihard", distance=distance
        )
        self.hard = miners.TripletMarginMiner(margin=margin, type_of_triplets="hard", distance=distance)
        self.loss = losses.TripletMarginLoss(margin=margin, distance=distance)
        # Every triplet counts, including those already beyond the margin (loss 0).
        self.all_triplets_loss = losses.TripletMarginLoss(
            margin=margin, distance=distance, reducer=reducers.MeanReducer()
        )
        self.last_triplet_count: int | None = None

    def forward(self, embeddings: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        scoring = _SCORING.get()
        if scoring is not None:
            from pytorch_metric_learning.utils import loss_and_miner_utils

            triplets = loss_and_miner_utils.get_all_triplets_indices(groups)
            loss = self.all_triplets_loss(embeddings, groups, triplets)
        else:
            triplets = self.semihard(embeddings, groups)
            if triplets[0].numel() == 0:
                triplets = self.hard(embeddings, groups)
            loss = self.loss(embeddings, groups, triplets)
        self.last_triplet_count = int(triplets[0].numel())
        if scoring is not None:
            scoring.calls += 1
            scoring.triplets += self.last_triplet_count
        return loss


def cosine_similarity_loss(
    vectors1: torch.Tensor, vectors2: torch.Tensor, scores: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between the pairs' cosine similarity and the target scores."""
    similarities = F.cosine_similarity(vectors1, vectors2, dim=-1)
    return F.mse_loss(similarities, scores.to(similarities.dtype))
