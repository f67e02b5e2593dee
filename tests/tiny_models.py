"""Small pure-torch models that implement bpcore's model protocol, for testing the core.

They are real models (trainable, savable), just tiny: a character-trigram embedding bag
for texts, a small convolutional net for images, and a character generator for the
text-to-text tasks (qa, emotion, summarisation, text-generation).
"""

from __future__ import annotations

import zlib
from typing import Any

import torch
import torch.nn.functional as F

from bpcore.errors import InputError
from bpcore.images import load_image
from bpcore.models import BaseModel

BUCKETS = 512


def trigram_ids(text: str, max_length: int | None = None) -> list[int]:
    padded = f"  {text.lower()}  "
    ids = [zlib.crc32(padded[i : i + 3].encode()) % BUCKETS for i in range(len(padded) - 2)]
    return ids[:max_length] if max_length else ids


class TinyTextModel(BaseModel):
    """Vectorises and classifies text with a trigram embedding bag."""

    def __init__(
        self,
        dim: int = 16,
        name: str | None = "tiny-text",
        description=None,
        tasks=None,
        details=None,
        device=None,
    ):
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
    def __call__(
        self, task_input: dict[str, Any], task: str = "text-vectorisation", return_tensor: bool = False
    ) -> Any:
        vectors = self.embed(task_input["text"])
        if task == "text-vectorisation":
            return vectors if return_tensor else vectors.tolist()
        labels = task_input.get("labels")
        top_k = task_input.get("top_k") or 0
        if labels is None:
            if self.head is None:
                raise InputError(
                    "give labels: this model has not been finetuned on its own labels", field="input.labels"
                )
            probabilities = F.softmax(self.head(vectors), dim=-1)
            return [keep_top_k(dict(zip(self.labels, row.tolist())), top_k) for row in probabilities]
        out = []
        for vector, item_labels in zip(vectors, labels):
            label_vectors = self.embed(item_labels)
            scores = F.softmax(F.cosine_similarity(vector[None], label_vectors) * 10, dim=-1)
            out.append(keep_top_k(dict(zip(item_labels, scores.tolist())), top_k))
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


# -- text classification guard and top_k ------------------------------------------------------


def keep_top_k(scores: dict[str, float], top_k: int) -> dict[str, float]:
    if not top_k:
        return scores
    return dict(sorted(scores.items(), key=lambda item: item[1], reverse=True)[:top_k])


# -- images -----------------------------------------------------------------------------------

IMAGE_SIZE = 8


def pixels(image: Any) -> torch.Tensor:
    """An image (path, base64 or PIL) as a 3×8×8 float tensor, decoded by the core's loader."""
    rgb = load_image(image).resize((IMAGE_SIZE, IMAGE_SIZE))
    raw = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return raw.reshape(IMAGE_SIZE, IMAGE_SIZE, 3).permute(2, 0, 1).float() / 255.0


class TinyImageModel(BaseModel):
    """Classifies and vectorises images (and image-text pairs) with a tiny convolutional net."""

    def __init__(
        self,
        dim: int = 16,
        name: str | None = "tiny-image",
        description=None,
        tasks=None,
        details=None,
        device=None,
    ):
        super().__init__(
            None,
            name=name,
            description=description or "tiny convolutional net",
            tasks=tasks or ["image-classification", "image-vectorisation", "image-text-vectorisation"],
            details=details,
            device=device,
        )
        self.dim = dim
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.project = torch.nn.Linear(8 * 4 * 4, dim)
        self.text = torch.nn.EmbeddingBag(BUCKETS, dim, mode="mean")
        self.head: torch.nn.Linear | None = None
        self.labels: list[str] = []
        self.to(self.device)

    def image_vectors(self, batch: torch.Tensor) -> torch.Tensor:
        hidden = F.max_pool2d(F.relu(self.conv(batch.to(self.device))), 2)
        return self.project(hidden.flatten(1))

    def text_vectors(self, texts: list[str]) -> torch.Tensor:
        ids = [torch.tensor(trigram_ids(text)) for text in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return self.text(torch.cat(ids).to(self.device), offsets.to(self.device))

    def pair_vectors(
        self, images: torch.Tensor, texts_ids: torch.Tensor, offsets: torch.Tensor
    ) -> torch.Tensor:
        combined = self.image_vectors(images) + self.text(texts_ids.to(self.device), offsets.to(self.device))
        return F.normalize(combined, dim=-1)

    @torch.inference_mode()
    def __call__(
        self, task_input: dict[str, Any], task: str = "image-vectorisation", return_tensor: bool = False
    ) -> Any:
        batch = torch.stack([pixels(image) for image in task_input["image"]])
        if task == "image-text-vectorisation":
            vectors = F.normalize(self.image_vectors(batch) + self.text_vectors(task_input["text"]), dim=-1)
            return vectors if return_tensor else vectors.tolist()
        vectors = self.image_vectors(batch)
        if task == "image-vectorisation":
            return vectors if return_tensor else vectors.tolist()
        labels = task_input.get("labels")
        top_k = task_input.get("top_k") or 0
        if labels is None:
            if self.head is None:
                raise InputError(
                    "give labels: this model has not been finetuned on its own labels", field="input.labels"
                )
            probabilities = F.softmax(self.head(vectors), dim=-1)
            return [keep_top_k(dict(zip(self.labels, row.tolist())), top_k) for row in probabilities]
        out = []
        for vector, item_labels in zip(vectors, labels):
            scores = F.softmax(F.cosine_similarity(vector[None], self.text_vectors(item_labels)) * 10, dim=-1)
            out.append(keep_top_k(dict(zip(item_labels, scores.tolist())), top_k))
        return out

    def pre_finetuning(
        self, labels: dict[int, str] | None = None, num_classes: int | None = None, multi_label: bool = False
    ) -> None:
        if labels is not None:
            self.labels = [labels[i] for i in range(len(labels))]
            self.head = torch.nn.Linear(self.dim, num_classes or len(labels)).to(self.device)

    def process_batch(self, params: dict[str, Any], task: str) -> Any:
        item: dict[str, Any] = {"pixels": pixels(params["image"])}
        if "text" in params:
            item["ids"] = trigram_ids(params["text"])
        return item

    def collate_batch(self, items: list[dict[str, Any]], task: str) -> dict[str, torch.Tensor]:
        batch = {"pixels": torch.stack([item["pixels"] for item in items])}
        if "ids" in items[0]:
            batch["ids"] = torch.cat([torch.tensor(item["ids"]) for item in items])
            batch["offsets"] = torch.tensor([0] + [len(item["ids"]) for item in items[:-1]]).cumsum(0)
        return batch

    def training_step(self, batch: dict[str, torch.Tensor], task: str) -> torch.Tensor:
        if task == "image-text-vectorisation":
            return self.pair_vectors(batch["pixels"], batch["ids"], batch["offsets"])
        vectors = self.image_vectors(batch["pixels"])
        return self.head(vectors) if task == "image-classification" else vectors

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=5e-2)

    def extra_config(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def apply_extra_config(self, config: dict[str, Any]) -> None:
        if config.get("labels"):
            self.pre_finetuning(labels=dict(enumerate(config["labels"])))


# -- text to text -----------------------------------------------------------------------------

MAX_OUTPUT = 16
EOS = 0
IGNORE = -100
VOCAB = 96  # EOS, then the printable ASCII characters 32..126


def encode_output(text: str, max_length: int | None = None) -> list[int]:
    limit = min(MAX_OUTPUT - 1, max_length or MAX_OUTPUT)
    ids = [ord(char) - 31 if 32 <= ord(char) <= 126 else ord("?") - 31 for char in text[:limit]]
    return (ids + [EOS] + [IGNORE] * MAX_OUTPUT)[:MAX_OUTPUT]


def decode_output(ids: list[int]) -> str:
    chars = []
    for index in ids:
        if index == EOS:
            break
        chars.append(chr(index + 31))
    return "".join(chars)


def qa_source(question: str, context: str, prev_qa: list[Any]) -> str:
    history = " ".join(f"{q} {a}" for q, a in prev_qa)
    return f"{history} | {question} | {context}"


class TinyTextToTextModel(BaseModel):
    """Generates short texts character by character from a trigram encoding; learns any text-to-text task."""

    def __init__(
        self,
        dim: int = 32,
        name: str | None = "tiny-t2t",
        description=None,
        tasks=None,
        details=None,
        device=None,
    ):
        super().__init__(
            None,
            name=name,
            description=description or "position-wise character generator",
            tasks=tasks or ["qa", "emotion", "summarisation", "text-generation"],
            details=details,
            device=device,
        )
        self.embedding = torch.nn.EmbeddingBag(BUCKETS, dim, mode="mean")
        self.decoder = torch.nn.Linear(dim, MAX_OUTPUT * VOCAB)
        self.to(self.device)

    def logits(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        hidden = self.embedding(ids.to(self.device), offsets.to(self.device))
        return self.decoder(hidden).reshape(-1, MAX_OUTPUT, VOCAB)

    @staticmethod
    def sources(task_input: dict[str, Any], task: str) -> list[str]:
        if task == "qa":
            return [
                qa_source(*item)
                for item in zip(task_input["question"], task_input["context"], task_input["prev_qa"])
            ]
        return list(task_input["text"])

    @torch.inference_mode()
    def __call__(self, task_input: dict[str, Any], task: str = "text-generation") -> Any:
        ids = [torch.tensor(trigram_ids(source)) for source in self.sources(task_input, task)]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        texts = [decode_output(row.tolist()) for row in self.logits(torch.cat(ids), offsets).argmax(-1)]
        if task != "text-generation":
            return texts
        if task_input.get("max_length"):
            texts = [text[: task_input["max_length"]] for text in texts]
        generations = task_input.get("num_generations") or 1
        return [[text] * generations for text in texts] if generations > 1 else texts

    def process_batch(self, params: dict[str, Any], task: str) -> Any:
        if task == "qa":
            source = qa_source(params["question"], params["context"], params["prev_qa"])
        else:
            source = params["input"]
        return {
            "ids": trigram_ids(source, params.get("max_input_length")),
            "target": encode_output(params["output"], params.get("max_output_length")),
        }

    def collate_batch(self, items: list[dict[str, Any]], task: str) -> dict[str, torch.Tensor]:
        return {
            "ids": torch.cat([torch.tensor(item["ids"]) for item in items]),
            "offsets": torch.tensor([0] + [len(item["ids"]) for item in items[:-1]]).cumsum(0),
            "target": torch.tensor([item["target"] for item in items]),
        }

    def training_step(self, batch: dict[str, torch.Tensor], task: str) -> torch.Tensor:
        logits = self.logits(batch["ids"], batch["offsets"])
        return F.cross_entropy(
            logits.reshape(-1, VOCAB), batch["target"].reshape(-1).to(self.device), ignore_index=IGNORE
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=5e-2)


class PlainCallableModel:
    """A model that is no BaseModel: it can only be saved as a pickle."""

    tasks = ["text-vectorisation"]
    name = "plain-callable"

    def __init__(self, scale: float = 2.0):
        self.scale = scale

    def __call__(
        self, task_input: dict[str, Any], task: str = "text-vectorisation", return_tensor: bool = False
    ) -> Any:
        vectors = [[self.scale * len(text), float(text.count(" "))] for text in task_input["text"]]
        return torch.tensor(vectors) if return_tensor else vectors
