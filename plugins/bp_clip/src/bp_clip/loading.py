"""Building an open_clip model from an architecture name or a config JSON, and a tag or checkpoint file.

Everything here goes through open_clip's own factory (``create_model_and_transforms``,
``get_tokenizer``), so the preprocessing and the tokenizer are exactly the ones open_clip
pairs with the weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import open_clip
import torch
from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

from bpcore.errors import ModelLoadError

#: The spec's model names (the original OpenAI package's) for open_clip's architecture names.
ARCHITECTURE_ALIASES = {"ViT-B/32": "ViT-B-32", "ViT-B/16": "ViT-B-16", "ViT-L/14": "ViT-L-14"}
#: The keys every open_clip model config has (open_clip itself ignores files without them).
CONFIG_KEYS = ("embed_dim", "vision_cfg", "text_cfg")

# Configs read from files are added to open_clip's registry under a name made from their content,
# so two files called config.json never clash and no file can shadow a built-in architecture.
_CONFIG_FOLDER: Path | None = None


@attrs.frozen
class LoadedClip:
    """What :func:`load_open_clip` builds: the model, its inference preprocessing and tokenizer."""

    model: torch.nn.Module
    preprocess: Any
    tokenizer: Any
    #: The model config the weights belong to (open_clip's JSON format), for saving.
    model_config: dict[str, Any]
    #: The final image preprocessing config (size, mean, std, interpolation...).
    preprocess_config: dict[str, Any]


def architecture_name(model_path: str) -> str:
    """open_clip's name for ``model_path`` (``"ViT-B/32"`` → ``"ViT-B-32"``); names open_clip lacks raise."""
    name = ARCHITECTURE_ALIASES.get(model_path, model_path.replace("/", "-"))
    if name not in open_clip.list_models():
        raise ModelLoadError(
            f"{model_path!r} is neither an open_clip architecture nor an existing model-config JSON file; "
            f"architectures include ViT-B-32, RN50, RN101, RN50x4 (open_clip.list_models() lists all)"
        )
    return name


def read_config_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model_config, preprocess_config)`` from a model-config JSON.

    Both open_clip's plain format (``{"embed_dim", "vision_cfg", "text_cfg"}``) and its
    ``open_clip_config.json`` format (``{"model_cfg": ..., "preprocess_cfg": ...}``) are read.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path} is not a readable model-config JSON ({error})") from None
    if isinstance(data, dict) and isinstance(data.get("model_cfg"), dict):
        model_config, preprocess_config = data["model_cfg"], data.get("preprocess_cfg") or {}
    else:
        model_config, preprocess_config = data, {}
    if not isinstance(model_config, dict) or not all(key in model_config for key in CONFIG_KEYS):
        raise ModelLoadError(
            f"{path} is not an open_clip model config: it needs the keys {list(CONFIG_KEYS)}"
        )
    return model_config, dict(preprocess_config)


def register_config(model_config: Mapping[str, Any]) -> str:
    """Add ``model_config`` to open_clip's architectures; return the name it goes by."""
    global _CONFIG_FOLDER
    text = json.dumps(model_config, sort_keys=True)
    name = "bp-clip-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    if name not in open_clip.list_models():
        if _CONFIG_FOLDER is None:
            _CONFIG_FOLDER = Path(tempfile.mkdtemp(prefix="bp-clip-configs-"))
        path = _CONFIG_FOLDER / f"{name}.json"
        path.write_text(text)
        open_clip.add_model_config(path)
    return name


def load_open_clip(
    model_path: str | os.PathLike[str],
    pretrained: str | os.PathLike[str] | None,
    label: str,
    device: torch.device,
) -> LoadedClip:
    """Build the open_clip model ``model_path`` with the weights ``pretrained``.

    ``model_path`` is an architecture name or a model-config JSON file; ``pretrained`` is a
    checkpoint file (safetensors, or a torch file read with ``weights_only=True``), an open_clip
    tag (downloaded, so online only), or ``None`` for random weights. ``label`` names the model
    in errors.
    """
    preprocess_override: dict[str, Any] = {}
    if str(model_path).endswith(".json") or Path(model_path).is_file():
        model_config, preprocess_override = read_config_file(model_path)
        name = register_config(model_config)
    else:
        name = architecture_name(str(model_path))
        model_config = open_clip.get_model_config(name)
    options: dict[str, Any] = {}
    if pretrained is not None:
        pretrained = os.fspath(pretrained)
        tag = None if os.path.isfile(pretrained) else get_pretrained_cfg(name, pretrained)
        if tag:
            # OpenAI's weights were trained with QuickGELU; open_clip only warns about the mismatch.
            if tag.get("quick_gelu") and not model_config.get("quick_gelu"):
                options["force_quick_gelu"] = True
                model_config = {**model_config, "quick_gelu": True}
        elif not os.path.isfile(pretrained):
            raise ModelLoadError(
                f"cannot load model {label!r}: pretrained={pretrained!r} is neither a checkpoint file nor an "
                f"open_clip tag of {name} (tags: {list_pretrained_tags_by_model(name)}); "
                "pass the path of a local checkpoint file"
            )
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name,
            pretrained=pretrained,
            device=device,
            # A saved model keeps the preprocessing its weights came with (e.g. OpenAI's mean and std).
            image_mean=preprocess_override.get("mean"),
            image_std=preprocess_override.get("std"),
            image_interpolation=preprocess_override.get("interpolation"),
            image_resize_mode=preprocess_override.get("resize_mode"),
            **options,
        )
    except ModelLoadError:
        raise
    except Exception as error:  # open_clip raises RuntimeError, OSError, KeyError... per failure
        raise _load_error(label, name, pretrained, error) from None
    return LoadedClip(
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer(name),
        model_config=dict(model_config),
        preprocess_config=_json_ready(open_clip.get_model_preprocess_cfg(model)),
    )


def _json_ready(config: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(config), default=list))


def _load_error(label: str, name: str, pretrained: str | None, error: BaseException) -> ModelLoadError:
    if pretrained is not None and not os.path.isfile(pretrained):
        why = (
            f"the {pretrained!r} weights of {name} could not be downloaded (offline?); pass a local checkpoint "
            f"file instead, e.g. CLIP(model_path={name!r}, pretrained='/models/{name}.safetensors'), written "
            "where the network is reachable"
        )
    elif pretrained is not None:
        why = f"the checkpoint {pretrained} does not fit the {name} architecture or is not a checkpoint"
    else:
        why = f"the architecture {name} could not be built"
    return ModelLoadError(f"cannot load model {label!r}: {why} ({type(error).__name__}: {error})")
