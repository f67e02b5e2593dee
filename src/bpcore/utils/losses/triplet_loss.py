"""Spec 8.1.1, ``backprop.utils.losses.triplet_loss``: the semi-hard triplet loss under the spec's names.

The loss itself is :class:`bpcore.training.losses.TripletSemiHardLoss`, the one finetuning uses;
these names call it with the spec's arguments.

Example::

    import torch
    from bpcore.utils.losses.triplet_loss import TripletLoss, TripletSemiHardLoss

    embeddings, groups = torch.randn(4, 8), torch.tensor([0, 0, 1, 1])
    TripletLoss("cpu")(embeddings, groups)              # a module, as a model's training_step uses it
    TripletSemiHardLoss(groups, embeddings, "cpu")      # the same loss as a function: labels first
"""

from __future__ import annotations

from typing import Any

import torch

from bpcore.training import losses

__all__ = ["TripletLoss", "TripletSemiHardLoss", "pairwise_distance_torch"]


class TripletLoss(torch.nn.Module):
    """The semi-hard triplet loss of embeddings ``input`` whose integer groups are ``target``.

    ``device`` is where both are moved before the loss is computed. ``loss.last_triplet_count``
    is the number of triplets the last call used (0: no triplet formed, the loss is 0).

    Example::

        loss = TripletLoss("cpu")(embeddings, torch.tensor([0, 0, 1, 1]))
    """

    def __init__(self, device: str | torch.device, margin: float = 1.0):
        super().__init__()
        self.device = torch.device(device)
        self.loss = losses.TripletSemiHardLoss(margin=margin)

    def forward(self, input: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        # The spec passes a batch's other fields as keywords; the loss needs none of them.
        return self.loss(input.to(self.device), target.to(self.device))


def TripletSemiHardLoss(
    y_true: torch.Tensor, y_pred: torch.Tensor, device: str | torch.device, margin: float = 1.0
) -> torch.Tensor:
    """The semi-hard triplet loss (https://arxiv.org/abs/1503.03832) of embeddings ``y_pred`` grouped by ``y_true``.

    The spec's functional form: labels (a 1-D integer tensor) come first, the 2-D embeddings
    second. Positive pairs are pulled closer than the nearest negative farther than them, by
    ``margin``; a batch without such a negative uses the hardest one. Embeddings are
    L2-normalised first. The class :class:`bpcore.training.losses.TripletSemiHardLoss`
    computes it.

    Example::

        loss = TripletSemiHardLoss(torch.tensor([0, 0, 1, 1]), embeddings, "cpu")
    """
    target = torch.device(device)
    return losses.TripletSemiHardLoss(margin=margin)(y_pred.to(target), y_true.to(target))


def pairwise_distance_torch(embeddings: torch.Tensor, device: str | torch.device) -> torch.Tensor:
    """The Euclidean distance between every two rows of ``embeddings``: ``out[i, j] = |e[i] - e[j]|``.

    ``embeddings`` is a 2-D tensor (items x features), moved to ``device``. The diagonal is
    exactly 0, and the gradient is finite where two rows coincide (0 there).

    Example::

        pairwise_distance_torch(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), "cpu")   # [[0, 5], [5, 0]]
    """
    embeddings = embeddings.to(device)
    # cdist's matrix-product shortcut (used above 25 rows) cancels catastrophically: distances
    # of ~1e-3 between identical rows. Summing the differences is exact where it matters.
    return torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")
