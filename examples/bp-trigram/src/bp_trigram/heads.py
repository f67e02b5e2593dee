"""A classifier head over the user's own labels, shared by the text and the image model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from bpcore.plugins import InputError, learned_label_answers, probabilities, ranked


class LabelHead(torch.nn.Module):
    """Probabilities over labels: zero-shot from label vectors, or from a head finetuned on the user's labels."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.labels: list[str] = []
        self.multi_label = False
        self.linear: torch.nn.Linear | None = None

    def reset(self, labels: Mapping[int, str], multi_label: bool = False) -> None:
        """A fresh head for ``labels`` (index → label), as ``pre_finetuning`` is told them."""
        self.labels = [labels[index] for index in range(len(labels))]
        self.multi_label = multi_label
        self.linear = torch.nn.Linear(self.dim, len(self.labels))

    def logits(self, vectors: torch.Tensor) -> torch.Tensor:
        if self.linear is None:
            raise InputError(
                "the model has no labels of its own yet: finetune it first", field="params.labels"
            )
        return self.linear(vectors)

    def answer(
        self,
        vectors: torch.Tensor,
        task_input: Mapping[str, Any],
        label_vectors: Callable[[list[str]], torch.Tensor] | None = None,
    ) -> list[dict[str, float]]:
        """One ``{label: probability}`` per vector, for the labels in ``task_input`` or the learned ones."""
        labels = task_input.get("labels")
        k = task_input.get("top_k") or 0
        multi_label = bool(task_input.get("multi_label"))
        if labels is None:
            if self.linear is None:
                raise InputError(
                    "this model has no labels of its own yet: pass labels, or finetune it first",
                    field="input.labels",
                )
            multi_label = self.multi_label or multi_label
            return learned_label_answers(self.linear(vectors), self.labels, multi_label=multi_label, top_k=k)
        if label_vectors is None:
            raise InputError(
                "this model cannot score labels it was not finetuned on: leave labels out "
                "to get its own, or use a zero-shot model",
                field="input.labels",
            )
        answers = []
        for vector, item_labels in zip(vectors, labels):
            similarity = torch.nn.functional.cosine_similarity(vector[None], label_vectors(item_labels)) * 10
            scores = probabilities(similarity, multi_label)
            answers.append(ranked(dict(zip(item_labels, scores.tolist())), k))
        return answers

    def config(self) -> dict[str, Any]:
        return {"labels": self.labels, "multi_label": self.multi_label}

    def apply_config(self, config: Mapping[str, Any]) -> None:
        if config.get("labels"):
            self.reset(dict(enumerate(config["labels"])), bool(config.get("multi_label")))
