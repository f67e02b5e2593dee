"""EfficientNet: timm's EfficientNet models as a bpcore image-classification model."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from bp_effnet.catalogue import TIMM_NAMES
from bp_effnet.catalogue import details as catalogue_details
from bp_effnet.imagenet import imagenet_labels
from bp_effnet.weights import is_timm_classifier, load_into, read_state_dict
from bpcore.plugins import (
    IMAGE_CLASSIFICATION,
    InputError,
    InputTypeError,
    ModelLoadError,
    PathModel,
    SavedFolder,
    check_int,
    learned_label_answers,
    probabilities,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bp_effnet.weights import TimmClassifier
    from bpcore.plugins import ModelIdentity

#: The weights file inside a folder written by ``bpcore.save``.
SAVED_WEIGHTS = "efficientnet.safetensors"
#: The model that answers given (zero-shot) labels, pointed to when someone passes labels here.
ZERO_SHOT_MODEL = "clip"
#: Bounds on ``image_size``. The largest EfficientNet (L2) was trained at 800 px; far larger inputs
#: only exhaust memory (12,000 px is ~30 GB of activations per image), or make the image decoder
#: refuse them as decompression bombs.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024

Image = Any  # a PIL image; PIL is imported by timm's transforms, not here


class EfficientNet(PathModel):
    """An EfficientNet from timm for ``image-classification``: ImageNet inference, finetuning, saving.

    ``model_path`` is one of the spec's names, ``efficientnet-b0`` … ``efficientnet-b7`` (timm's
    ``tf_efficientnet_bN.aa_in1k``: Google's original weights), or any timm EfficientNet name
    (``"efficientnet_b0"``, ``"tf_efficientnet_b3.ns_jft_in1k"``). ``pretrained`` is ``True``
    (timm's ImageNet weights from the Hugging Face hub, cached after the first download),
    ``False`` (random weights) or the path of a local weights file: safetensors, or a torch state
    dict (read with ``weights_only=True``, so it cannot run code). A file's classifier may have
    any number of classes; name them with ``labels`` unless it has ImageNet's 1,000, and say
    ``multi_label=True`` for a classifier trained with a sigmoid per label.

    Preprocessing is timm's own for the model (``resolve_model_data_config`` then
    ``create_transform``); ``image_size`` overrides its input resolution (16 to 1,024 px; e.g.
    64 for small images: training gets ~12x cheaper than at 224). ``augment=True`` trains on
    timm's random training transforms (random resized crop, flip, colour jitter) instead of the
    inference ones.
    ``init_model(timm_name)`` may build the timm network instead of ``timm.create_model``.

    The model answers over its own labels: ImageNet's classes, or the labels it was finetuned
    on (an independent probability per label after multi-label finetuning). It cannot score
    labels given at call time; the ``clip`` model does that zero-shot.

    Example::

        import bpcore
        from bp_effnet import EfficientNet

        ic = bpcore.ImageClassification(EfficientNet("efficientnet-b0", pretrained="b0.safetensors"))
        ic("dog.png", top_k=3)                               # three ImageNet classes
        ic.finetune({"images": images, "labels": labels})    # now answers over your labels
        ic.save("my-effnet")                                 # bpcore.load("my-effnet") offline
    """

    optimal_batch_size = 16
    #: Images per forward pass at inference.
    inference_batch_size = 32
    #: Finetuning optimizer (see :meth:`configure_optimizers`).
    learning_rate = 0.1
    body_learning_rate = 0.01
    momentum = 0.9
    weight_decay = 1e-4
    #: A linear learning-rate warm-up over the first 10 steps (the core's schedule; see the README).
    finetune_defaults: ClassVar[Mapping[str, Any]] = {"warmup_steps": 10}
    default_tasks = (IMAGE_CLASSIFICATION,)
    model: TimmClassifier

    def __init__(
        self,
        model_path: str = "efficientnet-b0",
        init_model: Callable[[str], torch.nn.Module] | None = None,
        *,
        pretrained: bool | str | os.PathLike[str] = True,
        image_size: int | None = None,
        augment: bool = False,
        labels: Sequence[str] | None = None,
        multi_label: bool = False,
        **identity: Unpack[ModelIdentity],
    ) -> None:
        timm_name = resolve_timm_name(model_path)
        _check_image_size(image_size)
        if isinstance(pretrained, os.PathLike):
            pretrained = os.fspath(pretrained)
        if not isinstance(pretrained, (bool, str)):
            raise InputTypeError(
                f"must be True, False or the path of a weights file, got {type(pretrained).__name__}",
                field="pretrained",
            )
        label = identity.get("name") or str(model_path)

        def build(_: str) -> TimmClassifier:
            return _build_network(timm_name, pretrained, init_model, label)

        identity["description"] = (
            identity.get("description") or f"EfficientNet ({timm_name}) for image classification"
        )
        identity["details"] = _or_default(identity.get("details"), str(model_path))
        super().__init__(str(model_path), init_model=build, **identity)
        self.timm_name = timm_name
        self.image_size = image_size
        self.augment = bool(augment)
        self.multi_label = bool(multi_label)
        #: The user's labels the head was trained on; ``None`` while the head is ImageNet's.
        self.labels: list[str] | None = None
        self._set_labels(labels)
        self._transforms: dict[bool, Callable[[Image], torch.Tensor]] = {}
        self.eval()

    @property
    def class_names(self) -> list[str]:
        """The labels of the classifier's outputs, in order."""
        return list(self.labels) if self.labels is not None else list(imagenet_labels())

    def _set_labels(self, labels: Sequence[str] | None) -> None:
        outputs = self.model.num_classes
        if labels is None:
            if outputs != len(imagenet_labels()):
                raise ModelLoadError(
                    f"the classifier of {self.name or self.model_path!r} has {outputs} classes, not ImageNet's "
                    f"{len(imagenet_labels())}: name them with labels=[...]"
                )
            self.labels = None
            return
        labels = _check_labels(labels, "labels")
        if len(labels) != outputs:
            raise InputError(f"{len(labels)} labels for a classifier with {outputs} classes", field="labels")
        self.labels = labels

    # -- preprocessing --------------------------------------------------------------------
    def data_config(self) -> dict[str, Any]:
        """timm's data config for the network (``input_size`` overridden by ``image_size``)."""
        from timm.data import resolve_model_data_config

        args = {"input_size": (3, self.image_size, self.image_size)} if self.image_size else None
        return resolve_model_data_config(self.model, args=args)

    def transform(self, training: bool = False) -> Callable[[Image], torch.Tensor]:
        """timm's transform: a PIL image to a normalised ``[3, size, size]`` tensor.

        ``training=True`` gives the training transform (random augmentation when ``augment``).
        """
        if training not in self._transforms:
            from timm.data import create_transform

            self._transforms[training] = create_transform(**self.data_config(), is_training=training)
        return self._transforms[training]

    def preprocess(self, images: Sequence[Image]) -> torch.Tensor:
        """A batch tensor of decoded RGB PIL ``images``, with the inference transform."""
        transform = self.transform(training=False)
        return torch.stack([transform(image) for image in images])

    # -- inference ------------------------------------------------------------------------
    def __call__(
        self, task_input: Mapping[str, Any], task: str = IMAGE_CLASSIFICATION
    ) -> list[dict[str, float]]:
        """Probabilities over the model's labels for each of ``task_input["image"]`` (decoded RGB images)."""
        self.check_task(task)
        if task_input.get("labels") is not None:
            raise InputError(
                "EfficientNet answers over its own labels ("
                + (
                    f"the {len(self.labels)} it was finetuned on"
                    if self.labels
                    else "ImageNet's 1,000 classes"
                )
                + f") and cannot score labels given at call time: leave labels out, or use a zero-shot model, "
                f"e.g. bpcore.ImageClassification({ZERO_SHOT_MODEL!r})",
                field="input.labels",
            )
        top_k = int(task_input.get("top_k") or 0)
        return self.classify(task_input["image"], top_k=top_k)

    def classify(self, images: Sequence[Image], top_k: int = 0) -> list[dict[str, float]]:
        """``{label: probability}`` per image of ``images``, most probable first, the ``top_k`` best (0: all)."""
        return learned_label_answers(
            self.logits(images), self.class_names, multi_label=self.multi_label, top_k=top_k
        )

    def probabilities(self, images: Sequence[Image]) -> torch.Tensor:
        """``[len(images), classes]`` probabilities of ``images``: softmax, or a sigmoid per label if multi-label."""
        return probabilities(self.logits(images), self.multi_label)

    def logits(self, images: Sequence[Image]) -> torch.Tensor:
        """``[len(images), classes]`` logits of ``images``, computed in batches of ``inference_batch_size``."""
        rows = []
        with torch.inference_mode():
            for start in range(0, len(images), self.inference_batch_size):
                batch = self.preprocess(images[start : start + self.inference_batch_size])
                rows.append(self.model(batch.to(self.device)).float())
        if not rows:
            return torch.empty(0, self.model.num_classes)
        return torch.cat(rows).cpu()

    def image_classification(self, image: Image | Sequence[Image], top_k: int = 10000) -> Any:
        """The spec's helper: probabilities for one decoded ``image`` (a dict) or a list of them.

        ``top_k`` keeps the most likely labels. Example:
        ``model.image_classification(Image.open("dog.png").convert("RGB"), top_k=3)``.
        """
        single = not isinstance(image, (list, tuple))
        answers = self.classify([image] if single else list(image), top_k=top_k)
        return answers[0] if single else answers

    # -- finetuning -----------------------------------------------------------------------
    def pre_finetuning(
        self,
        labels: Mapping[int, str] | None = None,
        num_classes: int | None = None,  # the spec's second argument: checked against the labels
        multi_label: bool = False,
    ) -> None:
        """Replace the classifier with a fresh one for ``labels`` (``{index: label}``), via timm's ``reset_classifier``.

        Finetuning again on exactly the labels (and mode) the head already has keeps the head,
        so a second run continues the first.
        """
        if labels is None:
            return
        names = _check_labels([labels[index] for index in range(len(labels))], "labels")
        if num_classes is not None and num_classes != len(names):
            raise InputError(f"{num_classes} classes for {len(names)} labels", field="num_classes")
        if names == self.labels and bool(multi_label) == self.multi_label:
            return
        self.model.reset_classifier(len(names))
        self.model.to(self.device)
        self.labels = names
        self.multi_label = bool(multi_label)

    def process_batch(self, params: Mapping[str, Any], task: str = IMAGE_CLASSIFICATION) -> torch.Tensor:
        """One decoded image (``{"image": PIL RGB}``) as a model-ready tensor.

        While training with ``augment=True`` this is timm's random training transform; otherwise
        (and always for validation) the inference transform.
        """
        self.check_task(task)
        return self.transform(training=self.augment and self.training)(params["image"])

    def training_step(self, batch: torch.Tensor, task: str = IMAGE_CLASSIFICATION) -> torch.Tensor:
        """Logits ``[batch, labels]``; the task applies cross-entropy or a sigmoid per label."""
        self.check_task(task)
        return self.model(batch.to(self.device))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """SGD at learning rate 0.1, weight decay 1e-4 (the spec's), with momentum 0.9; the body at 0.01.

        Plain SGD at 0.1 with a freshly initialised head barely moves on small data, and
        momentum without a warm-up can blow up in the first steps (``finetune_defaults`` asks the
        core's schedule for a 10-step warm-up); see the README for the measurements. Change the
        class attributes (``learning_rate``, ``body_learning_rate``, ``momentum``,
        ``weight_decay``), pass ``warmup_steps=`` / ``warmup_ratio=``, or pass
        ``configure_optimizers=`` to ``finetune`` for another choice.
        """
        head = list(self.model.get_classifier().parameters())
        head_ids = {id(parameter) for parameter in head}
        body = [p for p in self.model.parameters() if id(p) not in head_ids and p.requires_grad]
        return torch.optim.SGD(
            [
                {"params": body, "lr": self.body_learning_rate},
                {"params": [p for p in head if p.requires_grad], "lr": self.learning_rate},
            ],
            lr=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )

    # -- saving ---------------------------------------------------------------------------
    def save_files(self, directory: Path) -> dict[str, Any]:
        """Write the network's weights (safetensors) and what rebuilds it: timm name, labels, options."""
        from safetensors.torch import save_model

        save_model(self.model, str(Path(directory) / SAVED_WEIGHTS))
        return {
            "model_path": self.timm_name,
            "weights": SAVED_WEIGHTS,
            "labels": self.labels,
            "multi_label": self.multi_label,
            "image_size": self.image_size,
            "augment": self.augment,
        }

    @classmethod
    def from_saved(
        cls, directory: SavedFolder, config: Mapping[str, Any], device: str | None = None
    ) -> EfficientNet:
        """Rebuild a model written by :meth:`save_files`, offline, from the weights inside its folder.

        The architecture must be a plain timm name (``hf-hub:`` or ``local-dir:`` names would make
        timm read elsewhere); ``image_size`` is bounded (:data:`MAX_IMAGE_SIZE`).
        """
        folder = SavedFolder.of(directory)
        weights = folder.file(config.get("weights"))
        model_path = config.get("model_path")
        if not isinstance(model_path, str) or not re.fullmatch(r"[\w.-]+", model_path):
            raise ModelLoadError(f"{folder.label}: model_path {model_path!r} is not a timm architecture name")
        image_size = config.get("image_size")
        if image_size is not None:
            check_int(
                image_size, "image_size", MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, where=f"{folder.label}/config.json"
            )
        return cls(
            model_path,
            pretrained=str(weights),
            labels=config.get("labels"),
            multi_label=bool(config.get("multi_label", False)),
            image_size=image_size,
            augment=bool(config.get("augment", False)),
            device=device,
        )


# -- helpers ----------------------------------------------------------------------------------


def resolve_timm_name(model_path: Any) -> str:
    """The timm model name for a spec name (``efficientnet-b0``) or a timm EfficientNet name."""
    import timm

    if not isinstance(model_path, (str, os.PathLike)):
        raise InputTypeError(f"expected a model name, got {type(model_path).__name__}", field="model_path")
    model_path = os.fspath(model_path)
    if model_path in TIMM_NAMES:
        return TIMM_NAMES[model_path]
    if "efficientnet" in model_path and timm.is_model(model_path):
        return model_path
    hint = (
        f"; to load weights from that file, pass it as pretrained: EfficientNet('efficientnet-b0', pretrained={model_path!r})"
        if os.path.isfile(model_path)
        else ""
    )
    raise InputError(
        f"{model_path!r} is not an EfficientNet: use one of {list(TIMM_NAMES)} or a timm EfficientNet name "
        f"(timm.list_models('*efficientnet*')){hint}",
        field="model_path",
    )


def _build_network(
    timm_name: str,
    pretrained: bool | str,
    init_model: Callable[[str], torch.nn.Module] | None,
    label: str,
) -> TimmClassifier:
    import timm

    from_hub = pretrained is True
    try:
        network = (
            init_model(timm_name)
            if init_model is not None
            else timm.create_model(timm_name, pretrained=from_hub)
        )
    except Exception as error:
        if not from_hub or init_model is not None:
            raise
        raise ModelLoadError(
            f"cannot load model {label!r}: its ImageNet weights ({timm_name}) are not cached locally and could "
            f"not be downloaded from the Hugging Face hub (offline?); pass a local weights file instead, e.g. "
            f"EfficientNet({label!r}, pretrained='/models/{timm_name}.safetensors') with a file written by "
            f"safetensors.torch.save_model(timm.create_model({timm_name!r}, pretrained=True), path) where the hub "
            f"is reachable ({type(error).__name__}: {str(error)[:300]})"
        ) from None
    if not is_timm_classifier(network):
        raise InputTypeError(
            f"init_model({timm_name!r}) gave {type(network).__name__}, not a timm classification network "
            "(a torch module with num_classes, get_classifier and reset_classifier)",
            field="init_model",
        )
    if isinstance(pretrained, str):
        load_into(network, read_state_dict(pretrained), pretrained)
    return network


def _or_default(details: Mapping[str, Any] | None, model_path: str) -> Mapping[str, Any]:
    if details is not None:
        return details
    return catalogue_details(model_path) if model_path in TIMM_NAMES else {}


def _check_labels(labels: Any, field: str) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise InputTypeError(f"expected a list of label strings, got {type(labels).__name__}", field=field)
    names = list(labels)
    for index, label in enumerate(names):
        if not isinstance(label, str) or not label.strip():
            raise InputError(f"must be a non-empty string, got {label!r}", field=f"{field}[{index}]")
    if len(set(names)) != len(names):
        raise InputError("labels must be unique", field=field)
    if not names:
        raise InputError("no labels", field=field)
    return names


def _check_image_size(image_size: Any) -> None:
    if image_size is not None and (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise InputError(
            f"must be an integer from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels, got {image_size!r}",
            field="image_size",
        )
