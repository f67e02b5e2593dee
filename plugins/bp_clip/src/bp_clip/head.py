"""The classification head of a finetuned CLIP, on normalised image embeddings."""

from __future__ import annotations

import torch

#: CLIP's logit scale is clamped to 100 in training; beyond that softmax saturates anyway.
MAX_LOGIT_SCALE = 100.0


class LabelHead(torch.nn.Module):
    """Logits per label: ``image · weight[label]``, centred over the labels, plus a bias per label.

    Centring leaves softmax probabilities unchanged (single-label), and for independent
    (sigmoid) probabilities it means "scores above this image's average label score": CLIP's
    raw scores share a large offset, which would otherwise make every label look present.
    """

    def __init__(self, num_labels: int, dim: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(num_labels, dim))
        self.bias = torch.nn.Parameter(torch.zeros(num_labels))

    def forward(self, image_embeddings: torch.Tensor) -> torch.Tensor:
        scores = image_embeddings @ self.weight.T
        return scores - scores.mean(dim=-1, keepdim=True) + self.bias

    @torch.no_grad()
    def init_from_text(self, label_embeddings: torch.Tensor, logit_scale: torch.Tensor) -> None:
        """Start as the zero-shot classifier: ``logits = scale * image · label_prompt`` (centred).

        ``label_embeddings`` is ``[dim, labels]`` (normalised columns), as open_clip's
        ``build_zero_shot_classifier`` returns it; before any training step the head gives the
        zero-shot probabilities, so finetuning starts from zero-shot accuracy.
        """
        scale = float(logit_scale.exp().clamp(max=MAX_LOGIT_SCALE))
        self.weight.copy_(label_embeddings.T * scale)
        self.bias.zero_()
