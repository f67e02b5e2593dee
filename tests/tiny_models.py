"""Small pure-torch models that implement bpcore's model protocol, for testing the core.

They are real models (trainable, savable), just tiny: a character-trigram embedding bag
for texts, and a small convolutional net for images.
"""

from __future__ import annotations

import zlib
from typing import Any

import torch
import torch.nn.functional as F

from bpcore.images import load_image
from bpcore.models import BaseModel

BUCKETS = 512


def trigram_ids(text: str, max_length: int | None = None) -> list[int]:
    padded = f"  {text.lower()}  "
    ids = [zlib.crc32(padded[i : i + 3].encode()) % BUCKETS for i in range(len(padded) - 2)]
    return ids[:max_length] if max_length else ids


class TinyTextModel(BaseModel):
    """Vectorises and classifies text with a trigram embedding bag."""

    def __init__(self, dim: int = 16, name: str | None = "tiny-text", description=None, tasks=None, details=None, device=None):
        super().__init__(
            None,
            name=name,
            description=description or "trigram embedding bag",
            tasks=tasks or ["text-vectorisation", "text-classification"],
            details=details,
            device=device,
        )
        self.dim = dim
        self.embedding = torch.nn.EmbeddingBag(BUCKETS, dim, mode="mean")
        self.head: torch.nn.Linear | None = None
        self.labels: list[str] = []
        self.to(self.device)

    def embed(self, texts: list[str], max_length: int | None = None) -> torch.Tensor:
        ids = [torch.tensor(trigram_ids(text, max_length)) for text in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return self.embedding(torch.cat(ids).to(self.device), offsets.to(self.device))

    @torch.inference_mode()
    def __call__(self, task_input: dict[str, Any], task: str = "text-vectorisation", return_tensor: bool = False) -> Any:
        vectors = self.embed(task_input["text"])
        if task == "text-vectorisation":
            return vectors if return_tensor else vectors.tolist()
        labels = task_input.get("labels")
        if labels is None:
            probabilities = F.softmax(self.head(vectors), dim=-1)
            return [dict(zip(self.labels, row.tolist())) for row in probabilities]
        out = []
        for vector, item_labels in zip(vectors, labels):
            label_vectors = self.embed(item_labels)
            scores = F.softmax(F.cosine_similarity(vector[None], label_vectors) * 10, dim=-1)
            out.append(dict(zip(item_labels, scores.tolist())))
        return out

    def pre_finetuning(self, labels: dict[int, str] | None = None, multi_label: bool = False) -> None:
        if labels is not None:
            self.labels = [labels[i] for i in range(len(labels))]
            self.head = torch.nn.Linear(self.dim, len(labels)).to(self.device)

    def process_batch(self, params: dict[str, Any], task: str) -> Any:
        text = params.get("text", params.get("inputs"))
        item = {"ids": trigram_ids(text, params.get("max_length"))}
        if "labels" in params:
            item["label"] = params["class_to_idx"][params["labels"]]
        return item

    def collate_batch(self, items: list[dict[str, Any]], task: str) -> dict[str, torch.Tensor]:
        batch = {
            "ids": torch.cat([torch.tensor(item["ids"]) for item in items]),
            "offsets": torch.tensor([0] + [len(item["ids"]) for item in items[:-1]]).cumsum(0),
        }
        if "label" in items[0]:
            batch["labels"] = torch.tensor([item["label"] for item in items])
        return batch

    def training_step(self, batch: dict[str, torch.Tensor], task: str) -> torch.Tensor:
        vectors = self.embedding(batch["ids"], batch["offsets"])
        if task == "text-vectorisation":
            return vectors
        logits = self.head(vectors)
        return F.cross_entropy(logits, batch["labels"]) if "labels" in batch else logits

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=5e-2)

    def extra_config(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def apply_extra_config(self, config: dict[str, Any]) -> None:
        if config.get("labels"):
            self.pre_finetuning(labels=dict(enumerate(config["labels"])))
