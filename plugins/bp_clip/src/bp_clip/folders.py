"""Recognising a plain OpenCLIP folder as a bp-clip model.

Two layouts, read from file names and JSON only (no torch, no open_clip):

- what ``open_clip.push_to_hf_hub``'s ``save_for_hf`` writes (and the hub serves):
  ``open_clip_config.json`` and ``open_clip_model.safetensors``;
- a model-config JSON (``{"embed_dim", "vision_cfg", "text_cfg"}``, e.g. ``ViT-B-32.json``) beside
  one safetensors checkpoint.

The model then loads as a saved bp-clip model does (:meth:`bp_clip.model.CLIP.from_saved`): the
config checked and its network compared with the weights before anything is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpcore.plugins import (
    IMAGE_CLASSIFICATION,
    IMAGE_TEXT_VECTORISATION,
    IMAGE_VECTORISATION,
    TEXT_VECTORISATION,
    ModelLoadError,
    SavedFolder,
)

DESCRIPTION = (
    "an OpenCLIP folder (open_clip_config.json with open_clip_model.safetensors, as save_for_hf writes, "
    "or one open_clip model-config JSON beside one safetensors checkpoint)"
)
TASKS = [IMAGE_CLASSIFICATION, IMAGE_VECTORISATION, TEXT_VECTORISATION, IMAGE_TEXT_VECTORISATION]
HUB_CONFIG, HUB_WEIGHTS, HUB_PICKLE = (
    "open_clip_config.json",
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.bin",
)
#: The keys every open_clip model config has.
CONFIG_KEYS = ("embed_dim", "vision_cfg", "text_cfg")


def recognise(path: Path, task: str | None) -> dict[str, Any] | None:
    """What to load an OpenCLIP folder as, or None when ``path`` is none."""
    if not path.is_dir():
        return None
    folder = SavedFolder(path)
    if folder.has_file(HUB_CONFIG):
        if not folder.has_file(HUB_WEIGHTS):
            if folder.has_file(HUB_PICKLE):
                raise ModelLoadError(
                    f"{path} is an OpenCLIP folder with pickled weights only ({HUB_PICKLE}): bpcore loads "
                    f"safetensors weights ({HUB_WEIGHTS}); write them with save_for_hf(..., safe_serialization=True)"
                )
            return None
        return _answer(HUB_CONFIG, HUB_WEIGHTS)
    configs = [name for name in _names(path, ".json") if _is_model_config(folder, name)]
    weights = _names(path, ".safetensors")
    if len(configs) == 1 and len(weights) == 1:
        return _answer(configs[0], weights[0])
    return None


def _answer(config: str, weights: str) -> dict[str, Any]:
    return {"class": "bp_clip.model:CLIP", "model": {"config": config, "weights": weights}, "tasks": TASKS}


def _names(path: Path, suffix: str) -> list[str]:
    return sorted(entry.name for entry in path.iterdir() if entry.name.endswith(suffix))


def _is_model_config(folder: SavedFolder, name: str) -> bool:
    try:
        data = folder.read_json(name)
    except ModelLoadError:
        return False
    if isinstance(data, dict) and isinstance(data.get("model_cfg"), dict):
        data = data["model_cfg"]
    return isinstance(data, dict) and all(key in data for key in CONFIG_KEYS)
