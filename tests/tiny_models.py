"""Small pure-torch models that implement bpcore's model protocol, for testing the core.

They are real models (trainable, savable), just tiny: a character-trigram embedding bag
for texts, a small convolutional net for images, and a character generator for the
text-to-text tasks (qa, emotion, summarisation, text-generation).
"""

from __future__ import annotations

import zlib
from pathlib import Path
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


def bag_inputs(id_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated ids and their offsets, as ``torch.nn.EmbeddingBag`` takes them."""
    ids = torch.cat([torch.tensor(item, dtype=torch.long) for item in id_lists])
    offsets = torch.tensor([0] + [len(item) for item in id_lists[:-1]]).cumsum(0)
    return ids, offsets


def collate_ids(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    ids, offsets = bag_inputs([item["ids"] for item in items])
    return {"ids": ids, "offsets": offsets}


class TinyModel(BaseModel):
    """What the tiny models share: the usual constructor, with defaults per class, and a fast optimizer."""

    default_name: str
    default_description: str
    default_tasks: list[str]
    default_dim: int = 16

    def __init__(
        self, dim: int | None = None, name=None, description=None, tasks=None, details=None, device=None
    ):
        super().__init__(
            None,
            name=self.default_name if name is ... else name,  # None: a nameless model
            description=description or self.default_description,
            tasks=tasks or self.default_tasks,
            details=details,
            device=device,
        )
        self.dim = dim or self.default_dim

    def bag(self, embedding: torch.nn.EmbeddingBag, id_lists: list[list[int]]) -> torch.Tensor:
        ids, offsets = bag_inputs(id_lists)
        return embedding(ids.to(self.device), offsets.to(self.device))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=5e-2)


class TinyClassifier(TinyModel):
    """A tiny model that scores zero-shot labels, or labels it was finetuned on with its own head."""

    def __init__(
        self, dim: int | None = None, name=None, description=None, tasks=None, details=None, device=None
    ):
        super().__init__(dim, name, description, tasks, details, device)
        # Set on the instance: nn.Module finds submodules only when no class attribute shadows them.
        self.head: torch.nn.Linear | None = None
        self.labels: list[str] = []

    def label_vectors(self, labels: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def classify(self, vectors: torch.Tensor, task_input: dict[str, Any]) -> list[dict[str, float]]:
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
            scores = F.softmax(
                F.cosine_similarity(vector[None], self.label_vectors(item_labels)) * 10, dim=-1
            )
            out.append(keep_top_k(dict(zip(item_labels, scores.tolist())), top_k))
        return out

    def pre_finetuning(
        self, labels: dict[int, str] | None = None, num_classes: int | None = None, multi_label: bool = False
    ) -> None:
        if labels is not None:
            self.labels = [labels[i] for i in range(len(labels))]
            self.head = torch.nn.Linear(self.dim, num_classes or len(labels)).to(self.device)

    def extra_config(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def apply_extra_config(self, config: dict[str, Any]) -> None:
        if config.get("labels"):
            self.pre_finetuning(labels=dict(enumerate(config["labels"])))


class TinyTextModel(TinyClassifier):
    """Vectorises and classifies text with a trigram embedding bag."""

    default_name = "tiny-text"
    default_description = "trigram embedding bag"
    default_tasks = ["text-vectorisation", "text-classification"]

    def __init__(
        self, dim: int | None = None, name=None, description=None, tasks=None, details=None, device=None
    ):
        super().__init__(dim, name, description, tasks, details, device)
        self.embedding = torch.nn.EmbeddingBag(BUCKETS, self.dim, mode="mean")
        self.to(self.device)

    def embed(self, texts: list[str], max_length: int | None = None) -> torch.Tensor:
        return self.bag(self.embedding, [trigram_ids(text, max_length) for text in texts])

    label_vectors = embed

    @torch.inference_mode()
    def __call__(
        self, task_input: dict[str, Any], task: str = "text-vectorisation", return_tensor: bool = False
    ) -> Any:
        vectors = self.embed(task_input["text"])
        if task == "text-vectorisation":
            return vectors if return_tensor else vectors.tolist()
        return self.classify(vectors, task_input)

    def process_batch(self, params: dict[str, Any], task: str) -> Any:
        text = params.get("text", params.get("inputs"))
        item = {"ids": trigram_ids(text, params.get("max_length"))}
        if "labels" in params:
            item["label"] = params["class_to_idx"][params["labels"]]
        return item

    def collate_batch(self, items: list[dict[str, Any]], task: str) -> dict[str, torch.Tensor]:
        batch = collate_ids(items)
        if "label" in items[0]:
            batch["labels"] = torch.tensor([item["label"] for item in items])
        return batch

    def training_step(self, batch: dict[str, torch.Tensor], task: str) -> torch.Tensor:
        vectors = self.embedding(batch["ids"], batch["offsets"])
        if task == "text-vectorisation":
            return vectors
        logits = self.head(vectors)
        return F.cross_entropy(logits, batch["labels"]) if "labels" in batch else logits


# -- text classification guard and top_k ------------------------------------------------------


def keep_top_k(scores: dict[str, float], top_k: int) -> dict[str, float]:
    """Most likely first, as the protocol asks; the first ``top_k`` (0: all)."""
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    return dict(ranked[:top_k] if top_k else ranked)


# -- images -----------------------------------------------------------------------------------

IMAGE_SIZE = 8


def pixels(image: Any) -> torch.Tensor:
    """An image (path, base64 or PIL) as a 3×8×8 float tensor, decoded by the core's loader."""
    rgb = load_image(image).resize((IMAGE_SIZE, IMAGE_SIZE))
    raw = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return raw.reshape(IMAGE_SIZE, IMAGE_SIZE, 3).permute(2, 0, 1).float() / 255.0


class TinyImageModel(TinyClassifier):
    """Classifies and vectorises images (and image-text pairs) with a tiny convolutional net."""

    default_name = "tiny-image"
    default_description = "tiny convolutional net"
    default_tasks = ["image-classification", "image-vectorisation", "image-text-vectorisation"]

    def __init__(
        self, dim: int | None = None, name=None, description=None, tasks=None, details=None, device=None
    ):
        super().__init__(dim, name, description, tasks, details, device)
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.project = torch.nn.Linear(8 * 4 * 4, self.dim)
        self.text = torch.nn.EmbeddingBag(BUCKETS, self.dim, mode="mean")
        self.to(self.device)

    def image_vectors(self, batch: torch.Tensor) -> torch.Tensor:
        hidden = F.max_pool2d(F.relu(self.conv(batch.to(self.device))), 2)
        return self.project(hidden.flatten(1))

    def label_vectors(self, texts: list[str]) -> torch.Tensor:
        return self.bag(self.text, [trigram_ids(text) for text in texts])

    @torch.inference_mode()
    def __call__(
        self, task_input: dict[str, Any], task: str = "image-vectorisation", return_tensor: bool = False
    ) -> Any:
        vectors = self.image_vectors(torch.stack([pixels(image) for image in task_input["image"]]))
        if task == "image-text-vectorisation":
            vectors = F.normalize(vectors + self.label_vectors(task_input["text"]), dim=-1)
        if task == "image-classification":
            return self.classify(vectors, task_input)
        return vectors if return_tensor else vectors.tolist()

    def process_batch(self, params: dict[str, Any], task: str) -> Any:
        item: dict[str, Any] = {"pixels": pixels(params["image"])}
        if "text" in params:
            item["ids"] = trigram_ids(params["text"])
        return item

    def collate_batch(self, items: list[dict[str, Any]], task: str) -> dict[str, torch.Tensor]:
        batch = {"pixels": torch.stack([item["pixels"] for item in items])}
        if "ids" in items[0]:
            batch.update(collate_ids(items))
        return batch

    def training_step(self, batch: dict[str, torch.Tensor], task: str) -> torch.Tensor:
        vectors = self.image_vectors(batch["pixels"])
        if task == "image-text-vectorisation":
            text = self.text(batch["ids"].to(self.device), batch["offsets"].to(self.device))
            return F.normalize(vectors + text, dim=-1)
        return self.head(vectors) if task == "image-classification" else vectors


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


class TinyTextToTextModel(TinyModel):
    """Generates short texts character by character from a trigram encoding; learns any text-to-text task."""

    default_name = "tiny-t2t"
    default_description = "position-wise character generator"
    default_tasks = ["qa", "emotion", "summarisation", "text-generation"]
    default_dim = 32

    def __init__(
        self, dim: int | None = None, name=None, description=None, tasks=None, details=None, device=None
    ):
        super().__init__(dim, name, description, tasks, details, device)
        self.embedding = torch.nn.EmbeddingBag(BUCKETS, self.dim, mode="mean")
        self.decoder = torch.nn.Linear(self.dim, MAX_OUTPUT * VOCAB)
        self.to(self.device)

    def logits(self, id_lists: list[list[int]]) -> torch.Tensor:
        return self.decoder(self.bag(self.embedding, id_lists)).reshape(-1, MAX_OUTPUT, VOCAB)

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
        logits = self.logits([trigram_ids(source) for source in self.sources(task_input, task)])
        texts = [decode_output(row.tolist()) for row in logits.argmax(-1)]
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

    def collate_batch(self, items: list[dict[str, Any]], task: str) -> dict[str, Any]:
        # Ids stay lists: logits() bags them, as at inference.
        return {
            "id_lists": [item["ids"] for item in items],
            "target": torch.tensor([item["target"] for item in items]),
        }

    def training_step(self, batch: dict[str, Any], task: str) -> torch.Tensor:
        logits = self.logits(batch["id_lists"])
        return F.cross_entropy(
            logits.reshape(-1, VOCAB), batch["target"].reshape(-1).to(self.device), ignore_index=IGNORE
        )


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


class VocabModel(BaseModel):
    """Vectorises text over a vocabulary file and a folder of stop words: two file arguments."""

    file_arguments = ("vocab", "stop_words")

    def __init__(self, vocab: str, stop_words: str | None = None, dim: int = 8, **kwargs: Any) -> None:
        super().__init__(**{"tasks": ["text-vectorisation"], **kwargs})
        self.words = Path(vocab).read_text().split()
        self.stop = set(Path(stop_words, "words.txt").read_text().split()) if stop_words else set()
        self.embedding = torch.nn.Embedding(len(self.words) + 1, dim)
        self.to(self.device)

    @torch.inference_mode()
    def __call__(
        self, task_input: dict[str, Any], task: str = "text-vectorisation", return_tensor: bool = False
    ) -> Any:
        index = {word: i + 1 for i, word in enumerate(self.words)}
        rows = []
        for text in task_input["text"]:
            ids = [index.get(word, 0) for word in text.lower().split() if word not in self.stop] or [0]
            rows.append(self.embedding(torch.tensor(ids, device=self.device)).mean(0))
        vectors = torch.stack(rows)
        return vectors if return_tensor else vectors.tolist()
