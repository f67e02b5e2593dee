"""A classifier's scores as answers: ``{label: probability}``, most probable first.

Every classification model answers the same way, so the rule lives here and plugins call it
(through :mod:`bpcore.plugins`): softmax over the labels asked for (they sum to 1), or an
independent sigmoid per label for a multi-label model; sorted; cut to ``top_k``; a label the
model never learned is an :class:`~bpcore.InputError` naming the item.

Example::

    logits = torch.tensor([[2.0, 0.5, -1.0]])
    learned_label_answers(logits, ["sport", "politics", "food"], top_k=2)
    # [{"sport": 0.79, "politics": 0.18}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from bpcore.errors import InputError, ModelProtocolError


def ranked(scores: Mapping[str, float], top_k: int = 0) -> dict[str, float]:
    """``{label: probability}`` sorted most probable first, the first ``top_k`` (0: all)."""
    order = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    return dict(order[:top_k] if top_k else order)


def probabilities(scores: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Softmax over the last dimension, or a sigmoid per label for a multi-label model."""
    return scores.sigmoid() if multi_label else scores.softmax(dim=-1)


def learned_label_answers(
    logits: torch.Tensor,
    learned: Sequence[str],
    *,
    multi_label: bool = False,
    wanted: Sequence[Sequence[str] | None] | None = None,
    top_k: int = 0,
) -> list[dict[str, float]]:
    """One answer per row of ``[items, len(learned)]`` logits, over the labels the model learned.

    ``wanted[i]`` keeps a subset of the learned labels for item ``i`` (None: all of them); a
    single-label model's probabilities are renormalised over that subset.
    """
    learned = list(learned)
    if logits.ndim != 2 or logits.shape[-1] != len(learned):
        raise ModelProtocolError(
            f"logits of shape {tuple(logits.shape)} do not match the {len(learned)} labels learned"
        )
    rows = wanted if wanted is not None else [None] * len(logits)
    indices = [_indices_of(item_labels, learned, index) for index, item_labels in enumerate(rows)]
    answers = []
    for row, item_indices in zip(logits.detach().float().cpu(), indices):
        scores = probabilities(row[item_indices], multi_label).tolist()
        answers.append(ranked(dict(zip([learned[i] for i in item_indices], scores)), top_k))
    return answers


def _indices_of(labels: Sequence[str] | None, learned: list[str], item: int) -> list[int]:
    if labels is None:
        return list(range(len(learned)))
    unknown = [label for label in labels if label not in learned]
    if unknown:
        raise InputError(
            f"{unknown} are not among the labels this model learned: {learned}", field=f"input.labels[{item}]"
        )
    return [learned.index(label) for label in labels]
