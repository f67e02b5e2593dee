"""Losses of spec chapter 8, for embeddings the core computes from a model's ``training_step``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances, losses, miners


class TripletSemiHardLoss(torch.nn.Module):
    """Triplet loss with semi-hard negative mining (FaceNet, https://arxiv.org/abs/1503.03832).

    For each anchor-positive pair, negatives farther than the positive but within ``margin``
    are used; when a batch has none, hard negatives (closer than the positive) are used, so
    small batches still learn. Distances are Euclidean between L2-normalised embeddings.

    Example::

        loss = TripletSemiHardLoss()(embeddings, torch.tensor([0, 0, 1, 1]))
    """

    def __init__(self, margin: float = 1.0):
        super().__init__()
        distance = distances.LpDistance(normalize_embeddings=True, p=2)
        self.semihard = miners.TripletMarginMiner(
            margin=margin, type_of_triplets="semihard", distance=distance
        )
        self.hard = miners.TripletMarginMiner(margin=margin, type_of_triplets="hard", distance=distance)
        self.loss = losses.TripletMarginLoss(margin=margin, distance=distance)

    def forward(self, embeddings: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        triplets = self.semihard(embeddings, groups)
        if triplets[0].numel() == 0:
            triplets = self.hard(embeddings, groups)
        return self.loss(embeddings, groups, triplets)


def cosine_similarity_loss(
    vectors1: torch.Tensor, vectors2: torch.Tensor, scores: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between the pairs' cosine similarity and the target scores."""
    similarities = F.cosine_similarity(vectors1, vectors2, dim=-1)
    return F.mse_loss(similarities, scores.to(similarities.dtype))
