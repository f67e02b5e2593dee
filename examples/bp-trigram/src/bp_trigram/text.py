"""TrigramTextModel: text vectorisation and classification from hashed character trigrams."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from bp_trigram.heads import LabelHead
from bpcore.plugins import BaseModel

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.plugins import ModelIdentity


TASKS = ["text-vectorisation", "text-classification"]


def trigram_ids(text: str, buckets: int, max_length: int | None = None) -> list[int]:
    """The bucket of each character trigram of ``text`` (stable across runs: crc32, not ``hash``)."""
    padded = f"  {text.lower()}  "
    ids = [zlib.crc32(padded[i : i + 3].encode()) % buckets for i in range(len(padded) - 2)]
    return ids[:max_length] if max_length else ids


class TrigramTextModel(BaseModel):
    """Averages learned vectors of a text's character trigrams.

    Example::

        import bpcore
        from bp_trigram import TrigramTextModel

        tv = bpcore.TextVectorisation(TrigramTextModel(dim=64))
        tv(["a text", "another text"])
        tc = bpcore.TextClassification(TrigramTextModel())
        tc.finetune({"texts": ["goal!", "stocks fell"], "labels": ["sport", "finance"]})
    """

    optimal_batch_size = 32
    default_tasks = TASKS

    def __init__(
        self,
        dim: int = 64,
        buckets: int = 4096,
        **identity: Unpack[ModelIdentity],
    ):
        super().__init__(None, **identity)
        self.buckets = buckets
        self.embedding = torch.nn.EmbeddingBag(buckets, dim, mode="mean")
        self.dropout = torch.nn.Dropout(0.1)
        self.head = LabelHead(dim)
        self.to(self.device)

    def vectorise(self, id_lists: Sequence[Sequence[int]]) -> torch.Tensor:
        ids = torch.tensor([i for ids in id_lists for i in ids], dtype=torch.long, device=self.device)
        offsets = torch.tensor([0, *[len(ids) for ids in id_lists[:-1]]], device=self.device).cumsum(0)
        return self.dropout(self.embedding(ids, offsets))

    def texts_to_vectors(self, texts: Sequence[str]) -> torch.Tensor:
        return self.vectorise([trigram_ids(text, self.buckets) for text in texts])

    # -- inference: the core calls this in eval mode, without gradients -----------------------
    def __call__(self, task_input: Mapping[str, Any], task: str, return_tensor: bool = False) -> Any:
        vectors = self.texts_to_vectors(task_input["text"])
        if task == "text-classification":
            return self.head.answer(vectors, task_input, label_vectors=self.texts_to_vectors)
        return vectors if return_tensor else vectors.tolist()

    # -- finetuning ---------------------------------------------------------------------------
    def pre_finetuning(self, labels: Mapping[int, str] | None = None, multi_label: bool = False) -> None:
        if labels is not None:  # text-classification tells the labels; text-vectorisation nothing
            self.head.reset(labels, multi_label)
            self.head.to(self.device)

    def process_batch(self, params: Mapping[str, Any], task: str) -> dict[str, Any]:
        text = params["text"] if task == "text-vectorisation" else params["inputs"]
        return {"ids": trigram_ids(text, self.buckets, params.get("max_length"))}

    def collate_batch(self, items: Sequence[Mapping[str, Any]], task: str) -> dict[str, Any]:
        return {"ids": [item["ids"] for item in items]}

    def training_step(self, batch: Mapping[str, Any], task: str) -> torch.Tensor:
        vectors = self.vectorise(batch["ids"])
        if task == "text-vectorisation":
            return vectors  # the core applies the cosine-similarity or triplet loss
        # The core applies cross-entropy (single-label) or a sigmoid per label (multi-label).
        return self.head.logits(vectors)

    # -- saving: constructor arguments and weights are saved by default; the labels are extra ---
    def extra_config(self) -> dict[str, Any]:
        return self.head.config()

    def apply_extra_config(self, config: Mapping[str, Any]) -> None:
        self.head.apply_config(config)
        self.head.to(self.device)
