"""Recognising a plain timm EfficientNet, a folder or one weights file, as a bp-effnet model.

Read from file names, JSON and the safetensors header only (no torch, no timm):

- a folder timm's ``save_for_hf`` (``push_to_hub``) wrote: ``config.json`` naming an EfficientNet
  ``architecture`` (its ``label_names`` and input size too) beside ``model.safetensors``;
- a ``.safetensors`` file of a timm EfficientNet's weights: the architecture is the file's
  name when that is one (``efficientnet-b3.safetensors``, ``tf_efficientnet_b3.safetensors``),
  else the B0-B7 whose layer sizes the weights have.

The model then loads as a saved bp-effnet model does (:meth:`bp_effnet.model.EfficientNet.from_saved`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bp_effnet.catalogue import TIMM_NAMES
from bpcore.plugins import IMAGE_CLASSIFICATION, ModelLoadError, SavedFolder, safetensors_header

DESCRIPTION = (
    "a timm EfficientNet: a folder save_for_hf wrote (config.json naming the architecture, model.safetensors) "
    "or one .safetensors weights file"
)
IMAGENET_CLASSES = 1000
#: A timm EfficientNet name (with its pretrained tag, if any).
TIMM_NAME = re.compile(r"(tf_)?efficientnet_\w+(\.\w+)?")
#: The spec's sizes by (stem channels, head channels, blocks) of their weights.
SIZES = {
    (32, 1280, 16): "efficientnet-b0",
    (32, 1280, 23): "efficientnet-b1",
    (32, 1408, 23): "efficientnet-b2",
    (40, 1536, 26): "efficientnet-b3",
    (48, 1792, 32): "efficientnet-b4",
    (48, 2048, 39): "efficientnet-b5",
    (56, 2304, 45): "efficientnet-b6",
    (64, 2560, 55): "efficientnet-b7",
}
#: Tensors every timm EfficientNet has.
LAYERS = ("conv_stem.weight", "conv_head.weight", "classifier.weight")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024


def recognise(path: Path, task: str | None) -> dict[str, Any] | None:
    """What to load a timm EfficientNet folder or weights file as, or None when ``path`` is neither."""
    if path.is_dir():
        return _folder(SavedFolder(path))
    if path.is_file() and path.suffix == ".safetensors":
        return _file(path)
    return None


def _folder(folder: SavedFolder) -> dict[str, Any] | None:
    config = _timm_config(folder)
    if config is None:
        return None
    if not folder.has_file("model.safetensors"):
        raise ModelLoadError(
            f"{folder.label} is a timm folder without model.safetensors: bpcore loads no pickled weights "
            "(pytorch_model.bin); write them with save_for_hf(..., safe_serialization=True)"
        )
    found = config.get("pretrained_cfg")
    pretrained: dict[str, Any] = found if isinstance(found, dict) else {}
    tag = pretrained.get("tag")
    model_path = config["architecture"] + (f".{tag}" if isinstance(tag, str) and tag.isidentifier() else "")
    classes = config.get("num_classes", IMAGENET_CLASSES)
    labels = _labels(config.get("label_names"), classes)
    _need_labels(labels, classes, folder.label, "config.json names no label_names")
    model = {"weights": "model.safetensors", "model_path": model_path, "labels": labels}
    return _answer(model, image_size=_image_size(pretrained.get("input_size")))


def _timm_config(folder: SavedFolder) -> dict[str, Any] | None:
    if not folder.has_file("config.json"):
        return None
    try:
        config = folder.read_json("config.json")
    except ModelLoadError:
        return None
    architecture = config.get("architecture") if isinstance(config, dict) else None
    if not isinstance(architecture, str) or not TIMM_NAME.fullmatch(architecture):
        return None
    return config


def _file(path: Path) -> dict[str, Any] | None:
    try:
        header = safetensors_header(path)
    except ModelLoadError:
        return None
    if not all(name in header for name in LAYERS):
        return None
    model_path = path.stem if path.stem in TIMM_NAMES or TIMM_NAME.fullmatch(path.stem) else _size(header)
    if model_path is None:
        raise ModelLoadError(
            f"{path} holds EfficientNet weights of no size from B0 to B7; name the file after its timm "
            "architecture (e.g. tf_efficientnet_b0.safetensors)"
        )
    classes = header["classifier.weight"].get("shape", [0])[0]
    _need_labels(None, classes, str(path), "a weights file names no labels")
    return _answer({"weights": path.name, "model_path": model_path, "labels": None})


def _answer(model: dict[str, Any], image_size: int | None = None) -> dict[str, Any]:
    if image_size is not None:
        model["image_size"] = image_size
    return {"class": "bp_effnet.model:EfficientNet", "model": model, "tasks": [IMAGE_CLASSIFICATION]}


def _size(header: dict[str, dict[str, Any]]) -> str | None:
    blocks = {tuple(name.split(".")[1:3]) for name in header if name.startswith("blocks.")}
    stem = header["conv_stem.weight"].get("shape", [0])[0]
    head = header["conv_head.weight"].get("shape", [0])[0]
    return SIZES.get((stem, head, len(blocks)))


def _labels(names: Any, classes: Any) -> list[str] | None:
    """timm's ``label_names`` (a list, or a dict by class index) as a list, when it names every class."""
    if isinstance(names, dict):
        names = [names.get(str(index)) for index in range(len(names))]
    if isinstance(names, list) and len(names) == classes and all(isinstance(name, str) for name in names):
        return names
    return None


def _need_labels(labels: list[str] | None, classes: Any, where: str, why: str) -> None:
    if labels is None and classes != IMAGENET_CLASSES:
        raise ModelLoadError(
            f"{where} is an EfficientNet with {classes} classes, not ImageNet's {IMAGENET_CLASSES}, and {why}: "
            "bpcore cannot tell what its classes are"
        )


def _image_size(input_size: Any) -> int | None:
    """The square input size timm's config names (``[3, 224, 224]``), if it is within bounds."""
    if not isinstance(input_size, list) or len(input_size) != 3 or input_size[1] != input_size[2]:
        return None
    size = input_size[1]
    return size if isinstance(size, int) and MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE else None
