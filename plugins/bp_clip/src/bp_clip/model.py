"""CLIP: an OpenCLIP model for zero-shot image classification and image, text and image-text vectors."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_model, save_file

from bp_clip.head import LabelHead
from bp_clip.loading import (
    HF_TEXT_CONFIG_FOLDER,
    HF_TOKENIZER_FOLDER,
    CheckedConfig,
    check_saved_config,
    load_open_clip,
)
from bp_clip.zero_shot import DEFAULT_LABEL_TEMPLATE, LabelCache, label_embeddings
from bpcore.plugins import (
    IMAGE_CLASSIFICATION,
    IMAGE_TEXT_VECTORISATION,
    IMAGE_VECTORISATION,
    TEXT_VECTORISATION,
    BaseModel,
    InputError,
    ModelLoadError,
    SavedFolder,
    TaskNotSupportedError,
    adamw,
    check_weights,
    learned_label_answers,
    ranked,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bp_clip.loading import OpenClipModel
    from bpcore.plugins import ModelIdentity

TASKS = [IMAGE_CLASSIFICATION, IMAGE_VECTORISATION, TEXT_VECTORISATION, IMAGE_TEXT_VECTORISATION]
#: Images or texts per forward pass at inference.
INFERENCE_BATCH_SIZE = 32
#: Files of a saved model (written by :meth:`CLIP.save_files`). The folder is also an open_clip
#: ``local-dir:`` folder: ``open_clip.create_model_and_transforms("local-dir:<folder>")`` loads it.
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
HEAD_FILE = "head.safetensors"
#: Learning rates of the default optimizer for image classification: a fresh head learns fast,
#: the pretrained towers slowly (as for the vectorisation tasks).
HEAD_LEARNING_RATE = 1e-3
TOWER_LEARNING_RATE = 1e-5


class CLIP(BaseModel):
    """An OpenCLIP model: zero-shot image classification, image / text / image-text vectorisation.

    ``model_path`` is an open_clip architecture name (``"ViT-B-32"``, ``"RN50"``…; the spec's
    ``"ViT-B/32"`` works too) or an open_clip model-config JSON file. ``pretrained`` is an
    open_clip tag such as ``"openai"`` (downloaded: online only), a local checkpoint file
    (safetensors, or a torch file read with ``weights_only=True``), or ``None`` for random
    weights. Labels are put in ``label_template`` before their text is encoded.

    Vectors are normalised; an image-text vector is the normalised sum of the image's and the
    text's. Zero-shot label embeddings are computed once per distinct label list and reused.
    Finetuning an image classifier adds a head on the image embeddings that starts as the
    zero-shot classifier of its labels; afterwards ``labels=None`` answers over the learned
    labels, and passing labels still classifies zero-shot.

    Example::

        import bpcore
        from bpcore.models import CLIP

        model = CLIP("ViT-B-32", pretrained="/models/vit-b-32-openai.safetensors")
        ic = bpcore.ImageClassification(model)
        ic("dog.png", ["cat", "dog"])                 # {"dog": 0.98, "cat": 0.02}
        ic.finetune({"images": [...], "labels": ["beagle", "malamute", ...]})
        ic("dog.png")                                 # over the learned labels
        bpcore.ImageVectorisation(model)("dog.png")   # 512 floats
    """

    optimal_batch_size = 32
    default_tasks = TASKS
    default_description = "OpenCLIP model by OpenAI / LAION"
    model: OpenClipModel

    def __init__(
        self,
        model_path: str | os.PathLike[str] | CheckedConfig = "ViT-B-32",
        pretrained: str | os.PathLike[str] | None = "openai",
        label_template: str = DEFAULT_LABEL_TEMPLATE,
        **identity: Unpack[ModelIdentity],
    ) -> None:
        if "{}" not in label_template:
            raise InputError("must hold '{}' where the label goes", field="label_template")
        super().__init__(None, **identity)
        label = identity.get("name") or str(model_path)
        loaded = load_open_clip(model_path, pretrained, label=label, device=self.device)
        self.model = loaded.model
        self.preprocess = loaded.preprocess
        self.tokenizer = loaded.tokenizer
        self.model_config = loaded.model_config
        self.preprocess_config = loaded.preprocess_config
        self.context_length = int(self.model_config["text_cfg"].get("context_length", 77))
        self.label_template = label_template
        # Set on the instance: nn.Module only registers a submodule no class attribute shadows.
        self.head: LabelHead | None = None
        self.labels: list[str] = []
        self.multi_label = False
        self._label_cache = LabelCache()
        self._training_head = False
        self.eval()  # ready for inference; finetuning switches to training mode itself

    @property
    def vector_size(self) -> int:
        return int(self.model_config["embed_dim"])

    # -- inference ------------------------------------------------------------------------
    def __call__(
        self, task_input: Mapping[str, Any], task: str = IMAGE_CLASSIFICATION, return_tensor: bool = False
    ) -> Any:
        """Answer ``task_input`` (batched: a list per field) for ``task``; one answer per item."""
        self.check_task(task)
        with torch.inference_mode():
            if task == IMAGE_CLASSIFICATION:
                return self.classify(
                    task_input["image"], task_input.get("labels"), int(task_input.get("top_k") or 0)
                )
            if task == IMAGE_VECTORISATION:
                vectors = self.encode_images(task_input["image"])
            elif task == TEXT_VECTORISATION:
                vectors = self.encode_texts(task_input["text"])
            else:
                vectors = combine(
                    self.encode_images(task_input["image"]), self.encode_texts(task_input["text"])
                )
        return vectors if return_tensor else vectors.cpu().tolist()

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The ``[len(images), vector_size]`` normalised vectors of decoded RGB ``images``."""
        outputs = []
        for start in range(0, len(images), INFERENCE_BATCH_SIZE):
            chunk = images[start : start + INFERENCE_BATCH_SIZE]
            pixels = torch.stack([self.pixels(image) for image in chunk])
            outputs.append(self.model.encode_image(pixels.to(self.device), normalize=True))
        return torch.cat(outputs) if outputs else torch.empty(0, self.vector_size, device=self.device)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """The ``[len(texts), vector_size]`` normalised vectors of ``texts`` (CLIP's text tower)."""
        outputs = []
        for start in range(0, len(texts), INFERENCE_BATCH_SIZE):
            tokens = self.tokenize(texts[start : start + INFERENCE_BATCH_SIZE])
            outputs.append(self.model.encode_text(tokens.to(self.device), normalize=True))
        return torch.cat(outputs) if outputs else torch.empty(0, self.vector_size, device=self.device)

    def classify(
        self, images: Sequence[Image.Image], labels: Sequence[Sequence[str]] | None, top_k: int = 0
    ) -> list[dict[str, float]]:
        """``{label: probability}`` per image of ``images``: zero-shot over ``labels`` (one list per
        image), else the head; ``top_k`` keeps the most likely (0: all)."""
        features = self.encode_images(images)
        if labels is None:
            if self.head is None:
                raise InputError(
                    "no labels given, and this model was not finetuned on any: pass the labels to choose from",
                    field="input.labels",
                )
            return learned_label_answers(
                self.head(features), self.labels, multi_label=self.multi_label, top_k=top_k
            )
        answers: list[dict[str, float]] = [{} for _ in images]
        # The images sharing a label list are scored against its embeddings in one product.
        by_labels: dict[tuple[str, ...], list[int]] = {}
        for index, item_labels in enumerate(labels):
            by_labels.setdefault(tuple(item_labels), []).append(index)
        scale = self.model.logit_scale.exp().clamp(max=100.0)
        for item_labels, indices in by_labels.items():
            classifier = self.zero_shot_classifier(item_labels)
            probabilities = (scale * features[indices] @ classifier).softmax(dim=-1)
            for index, row in zip(indices, probabilities.cpu().tolist()):
                answers[index] = ranked(dict(zip(item_labels, row)), top_k)
        return answers

    def zero_shot_classifier(self, labels: Sequence[str]) -> torch.Tensor:
        """The ``[vector_size, len(labels)]`` embeddings of ``labels``, computed once per label list."""
        key = (str(self.device), self.label_template, *labels)
        return self._label_cache.get(
            key, lambda: label_embeddings(self.model, self.tokenize, labels, self.label_template, self.device)
        )

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> torch.Tensor:
        """Token ids ``[len(texts), context_length]`` of ``texts``, each cut to ``max_length`` tokens (with its ends)."""
        length = min(max_length or self.context_length, self.context_length)
        tokens = self.tokenizer(list(texts), context_length=length)
        if tokens.shape[1] < self.context_length:
            # The text tower adds a positional embedding per context slot; a causal mask keeps the
            # padding after the end token out of the text's vector.
            tokens = F.pad(tokens, (0, self.context_length - tokens.shape[1]))
        return tokens

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """open_clip's inference preprocessing of one decoded ``image`` (bpcore decodes them): a ``[3, H, W]`` tensor."""
        return self.preprocess(image)

    # -- the spec's helpers (6.1.4): one decoded image or text, or a list -------------------
    def image_classification(
        self,
        image: Image.Image | Sequence[Image.Image],
        labels: Sequence[str] | None = None,
        top_k: int = 10000,
    ) -> Any:
        """``{label: probability}`` for a decoded ``image`` (a list of them for a list), zero-shot over ``labels``.

        ``top_k`` keeps the most likely labels; ``labels=None`` answers over the labels the model was finetuned on. Example:
        ``model.image_classification(Image.open("dog.png").convert("RGB"), ["cat", "dog"])``.
        """
        images = _as_list(image)
        per_image = None if labels is None else [list(labels)] * len(images)
        with torch.inference_mode():
            answers = self.classify(images, per_image, top_k)
        return answers[0] if _single(image) else answers

    def image_vectorisation(self, image: Image.Image | Sequence[Image.Image]) -> torch.Tensor:
        """The normalised vector of a decoded ``image`` (a ``[len, vector_size]`` tensor for a list)."""
        with torch.inference_mode():
            vectors = self.encode_images(_as_list(image))
        return vectors[0] if _single(image) else vectors

    def text_vectorisation(self, text: str | Sequence[str]) -> torch.Tensor:
        """The normalised vector of a ``text`` (a ``[len, vector_size]`` tensor for a list)."""
        with torch.inference_mode():
            vectors = self.encode_texts([text] if isinstance(text, str) else list(text))
        return vectors[0] if isinstance(text, str) else vectors

    def image_text_vectorisation(
        self, image: Image.Image | Sequence[Image.Image], text: str | Sequence[str]
    ) -> torch.Tensor:
        """The combined vector of a decoded ``image`` and a ``text`` (a tensor of rows for lists of both)."""
        with torch.inference_mode():
            vectors = combine(
                self.encode_images(_as_list(image)),
                self.encode_texts([text] if isinstance(text, str) else list(text)),
            )
        return vectors[0] if _single(image) else vectors

    # -- finetuning -----------------------------------------------------------------------
    def can_finetune(self, task: str) -> bool:
        return task in TASKS

    def pre_finetuning(
        self, labels: Mapping[int, str] | None = None, multi_label: bool = False, **_: Any
    ) -> None:
        """Before finetuning: for image classification, a head initialised from the labels' prompts."""
        self._label_cache.clear()
        self._training_head = labels is not None
        if labels is None:
            return
        ordered = [labels[index] for index in range(len(labels))]
        with torch.no_grad():
            embeddings = label_embeddings(
                self.model, self.tokenize, ordered, self.label_template, self.device
            )
        head = LabelHead(len(ordered), self.vector_size).to(self.device)
        head.init_from_text(embeddings, self.model.logit_scale.detach())
        self.head, self.labels, self.multi_label = head, ordered, bool(multi_label)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW: lr 1e-5 for the towers; for image classification, lr 1e-3 for the new head."""
        if self._training_head and self.head is not None:
            return torch.optim.AdamW(
                [
                    {"params": list(self.head.parameters()), "lr": HEAD_LEARNING_RATE},
                    {"params": list(self.model.parameters()), "lr": TOWER_LEARNING_RATE},
                ]
            )
        return adamw(self.model.parameters(), lr=TOWER_LEARNING_RATE)

    def process_batch(self, params: Mapping[str, Any], task: str = IMAGE_VECTORISATION) -> dict[str, Any]:
        """One example: an image → its pixels; a text (and its ``max_length``) is tokenised per batch."""
        self.check_task(task)
        item: dict[str, Any] = {}
        if task != TEXT_VECTORISATION:
            item["pixels"] = self.pixels(params["image"])
        if task in (TEXT_VECTORISATION, IMAGE_TEXT_VECTORISATION):
            max_length = params.get("max_length")
            if max_length is not None and max_length > self.context_length:
                raise InputError(
                    f"{max_length} is more than this model's limit of {self.context_length} tokens",
                    field="max_length",
                )
            item["text"] = params["text"]
            item["max_length"] = max_length or self.context_length
        return item

    def collate_batch(
        self, items: Sequence[Mapping[str, Any]], task: str = IMAGE_VECTORISATION
    ) -> dict[str, Any]:
        """Stack the pixels and tokenise the texts of a batch of :meth:`process_batch` items."""
        batch: dict[str, torch.Tensor] = {}
        if "pixels" in items[0]:
            batch["pixels"] = torch.stack([item["pixels"] for item in items])
        if "text" in items[0]:
            batch["tokens"] = self.tokenize(
                [item["text"] for item in items], max_length=min(item["max_length"] for item in items)
            )
        return batch

    def training_step(
        self, batch: Mapping[str, torch.Tensor], task: str = IMAGE_VECTORISATION
    ) -> torch.Tensor:
        """Vectors ``[batch, dim]`` for the vectorisation tasks; head logits for image classification."""
        self.check_task(task)
        self._label_cache.clear()  # the weights are changing
        if task == TEXT_VECTORISATION:
            return self.model.encode_text(batch["tokens"].to(self.device), normalize=True)
        images = self.model.encode_image(batch["pixels"].to(self.device), normalize=True)
        if task == IMAGE_VECTORISATION:
            return images
        if task == IMAGE_TEXT_VECTORISATION:
            return combine(images, self.model.encode_text(batch["tokens"].to(self.device), normalize=True))
        if self.head is None:
            raise TaskNotSupportedError(
                "image classification finetuning needs pre_finetuning(labels=...) first"
            )
        return self.head(images)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """``torch.nn.Module.load_state_dict`` (``state_dict``, ``strict``, ``assign`` as there).

        It also forgets the label vectors computed with the old weights.
        """
        self._label_cache.clear()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # -- saving ---------------------------------------------------------------------------
    def extra_config(self) -> dict[str, Any]:
        """The learned labels (and whether they are multi-label), when a head was finetuned."""
        return {"labels": list(self.labels), "multi_label": self.multi_label} if self.head is not None else {}

    def apply_extra_config(self, config: Mapping[str, Any]) -> None:
        """Rebuild an (untrained) head for the saved labels, ready for the saved head weights."""
        labels = config.get("labels") or []
        if labels:
            self.head = LabelHead(len(labels), self.vector_size).to(self.device)
            self.labels = [str(label) for label in labels]
            self.multi_label = bool(config.get("multi_label", False))

    def save_files(self, directory: Path) -> dict[str, Any]:
        """Write the open_clip config JSON, the weights (safetensors) and the head, if any.

        A Hugging Face tokenizer (``text_cfg.hf_tokenizer_name``) or text tower config
        (``hf_model_name``) is written into the folder too, and the config names it there: a
        saved model loads from its own folder only.
        """
        directory = Path(directory)
        config = {
            "model_cfg": self._portable_model_config(directory),
            "preprocess_cfg": self.preprocess_config,
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        save_file(_contiguous(self.model.state_dict()), str(directory / WEIGHTS_FILE))
        if self.head is not None:
            save_file(_contiguous(self.head.state_dict()), str(directory / HEAD_FILE))
        return {
            "config": CONFIG_FILE,
            "weights": WEIGHTS_FILE,
            "head": HEAD_FILE if self.head is not None else None,
            "label_template": self.label_template,
            "extra": self.extra_config(),
        }

    def _portable_model_config(self, directory: Path) -> dict[str, Any]:
        text_config = dict(self.model_config["text_cfg"])
        if text_config.get("hf_tokenizer_name"):
            self.tokenizer.save_pretrained(str(directory / HF_TOKENIZER_FOLDER))
            text_config["hf_tokenizer_name"] = HF_TOKENIZER_FOLDER
        if text_config.get("hf_model_name"):
            self.model.text.config.save_pretrained(str(directory / HF_TEXT_CONFIG_FOLDER))
            text_config["hf_model_name"] = HF_TEXT_CONFIG_FOLDER
        return {**self.model_config, "text_cfg": text_config}

    @classmethod
    def from_saved(cls, directory: SavedFolder, config: Mapping[str, Any], device: str | None = None) -> CLIP:
        """Load a model written by :meth:`save_files`: offline, from its folder only, running nothing from it.

        The open_clip config is checked before open_clip sees it (:func:`bp_clip.loading.check_saved_config`):
        bounded numbers, no file or hub id outside the folder, and a network that fits the weights.
        """
        folder = SavedFolder.of(directory)
        weights = folder.file(config.get("weights"))
        model = cls(
            model_path=check_saved_config(folder, config.get("config"), weights),
            pretrained=str(weights),
            label_template=str(config.get("label_template") or DEFAULT_LABEL_TEMPLATE),
            device=device,
        )
        extra = config.get("extra") or {}
        if not isinstance(extra, dict):
            raise ModelLoadError(f"{folder.label}: extra must be a JSON object")
        model.apply_extra_config(extra)
        if model.head is not None:
            if not config.get("head"):
                raise ModelLoadError(f"{folder.label} lists learned labels but holds no head weights")
            head = folder.file(config["head"])
            check_weights(model.head, head)
            load_model(model.head, str(head), device=str(model.device))
        return model


def combine(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """One normalised vector per image-text pair: the normalised sum of both normalised vectors."""
    return F.normalize(images + texts, dim=-1)


def _contiguous(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().contiguous() for key, value in state.items()}


def _single(image: Any) -> bool:
    return not isinstance(image, (list, tuple))


def _as_list(image: Any) -> list[Any]:
    return [image] if _single(image) else list(image)
