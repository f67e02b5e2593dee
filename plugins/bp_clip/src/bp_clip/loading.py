"""Building an open_clip model from an architecture name or a config JSON, and a tag or checkpoint file.

Everything here goes through open_clip's own factory (``create_model_and_transforms``,
``get_tokenizer``), so the preprocessing and the tokenizer are exactly the ones open_clip
pairs with the weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import open_clip
import torch
from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

from bpcore.plugins import PATH_KEY, ModelLoadError, SavedFolder, check_numbers, check_weights, quiet

#: The spec's model names (the original OpenAI package's) for open_clip's architecture names.
ARCHITECTURE_ALIASES = {"ViT-B/32": "ViT-B-32", "ViT-B/16": "ViT-B-16", "ViT-L/14": "ViT-L-14"}
#: The keys every open_clip model config has (open_clip itself ignores files without them).
CONFIG_KEYS = ("embed_dim", "vision_cfg", "text_cfg")

#: Subfolders of a saved model for a Hugging Face tokenizer or text tower config (when the model has one).
HF_TOKENIZER_FOLDER = "hf-tokenizer"
HF_TEXT_CONFIG_FOLDER = "hf-text-config"
#: Keys of ``text_cfg.tokenizer_kwargs`` a saved config may set (none names a file: ``bpe_path`` would).
TOKENIZER_KWARGS = frozenset({"clean", "strip_sep_token", "language", "reduction_mask"})
#: The keys of that kind a saved config may hold, each checked on its own.
CHECKED_NAME_KEYS = frozenset({"hf_tokenizer_name", "hf_model_name", "timm_model_name"})


if TYPE_CHECKING:

    class OpenClipModel(torch.nn.Module):
        """What bp-clip uses of open_clip's ``CLIP`` and ``CustomTextCLIP`` (open_clip ships no types)."""

        logit_scale: torch.nn.Parameter
        #: The text tower (a Hugging Face model with its ``config`` in ``CustomTextCLIP``).
        text: Any

        def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor: ...

        def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor: ...


@attrs.frozen
class CheckedConfig:
    """A model config read from a saved folder and checked: open_clip gets these dicts, not the file.

    Names of files in it (a Hugging Face tokenizer or text config) are absolute paths inside the
    saved folder. ``str()`` is the file's path, which names the model in errors.
    """

    path: Path
    model_config: dict[str, Any]
    preprocess_config: dict[str, Any]

    def __str__(self) -> str:
        return str(self.path)


@attrs.frozen
class LoadedClip:
    """What :func:`load_open_clip` builds: the model, its inference preprocessing and tokenizer."""

    model: OpenClipModel
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
    """Add ``model_config`` to open_clip's architectures; return the name it goes by.

    The name is made from the config's content, so two files called config.json never clash and
    no file can shadow a built-in architecture. open_clip reads the config from a file once, into
    its registry; the file is removed right after, so nothing is left in the temp folder.
    """
    text = json.dumps(model_config, sort_keys=True)
    name = "bp-clip-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    with _REGISTERING:
        if name not in open_clip.list_models():
            with tempfile.TemporaryDirectory(prefix="bp-clip-config-") as folder:
                path = Path(folder) / f"{name}.json"
                path.write_text(text)
                open_clip.add_model_config(path)
    return name


_REGISTERING = threading.Lock()


def load_open_clip(
    model_path: str | os.PathLike[str] | CheckedConfig,
    pretrained: str | os.PathLike[str] | None,
    label: str,
    device: torch.device,
) -> LoadedClip:
    """Build the open_clip model ``model_path`` with the weights ``pretrained``.

    ``model_path`` is an architecture name, a model-config JSON file or a :class:`CheckedConfig`
    (from a saved folder); ``pretrained`` is a
    checkpoint file (safetensors, or a torch file read with ``weights_only=True``), an open_clip
    tag (downloaded, so online only), or ``None`` for random weights. ``label`` names the model
    in errors.
    """
    preprocess_override: dict[str, Any] = {}
    if isinstance(model_path, CheckedConfig):
        model_config, preprocess_override = model_path.model_config, model_path.preprocess_config
        name = register_config(model_config)
    elif str(model_path).endswith(".json") or Path(model_path).is_file():
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
        # quiet: open_clip logs "ERROR:root:Failed to download weights" before the error bpcore raises.
        with quiet():
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


# -- a saved folder's config, checked before open_clip sees it --------------------------------------


def check_saved_config(folder: SavedFolder, name: Any, weights: Path) -> CheckedConfig:
    """The saved open_clip config ``name`` of ``folder``, checked; refused with a ModelLoadError.

    Its numbers are bounded (:data:`bpcore.saved_folder.SIZE_BOUNDS`); a Hugging Face tokenizer
    or text config must be a subfolder of the saved folder (a saved model resolves its tokenizer
    inside its folder, or is the package's own vocabulary); a timm tower must be a plain timm
    architecture; no other value may name a file. The network it describes is then built on the
    ``meta`` device and compared with the saved ``weights``, before anything is allocated.
    """
    where = f"{folder.label}/{name}"
    data = folder.read_json(name)
    if isinstance(data, dict) and isinstance(data.get("model_cfg"), dict):
        model_config, preprocess_config = dict(data["model_cfg"]), data.get("preprocess_cfg") or {}
    else:
        model_config, preprocess_config = data, {}
    if not isinstance(model_config, dict) or not all(
        isinstance(model_config.get(key), dict) for key in CONFIG_KEYS[1:]
    ):
        raise ModelLoadError(
            f"{where} is not an open_clip model config: it needs the keys {list(CONFIG_KEYS)}"
        )
    if not isinstance(preprocess_config, dict):
        raise ModelLoadError(f"{where}: preprocess_cfg is not a JSON object")
    check_numbers(model_config, where)
    check_numbers(preprocess_config, where)
    _check_names(model_config, where, CHECKED_NAME_KEYS)
    _check_names(preprocess_config, where, frozenset())
    text_config = dict(model_config["text_cfg"])
    vision_config = dict(model_config["vision_cfg"])
    for key in ("hf_tokenizer_name", "hf_model_name"):
        if text_config.get(key):
            text_config[key] = str(_hf_folder(folder, text_config[key], key, where))
    _check_tokenizer_kwargs(text_config.get("tokenizer_kwargs"), where)
    _check_timm_name(vision_config.get("timm_model_name"), where)
    model_config = {**model_config, "text_cfg": text_config, "vision_cfg": vision_config}
    check_fits(model_config, weights, where)
    return CheckedConfig(folder / name, model_config, dict(preprocess_config))


def _check_names(data: Any, where: str, allowed: frozenset[str]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and value and PATH_KEY.search(str(key)) and key not in allowed:
                raise ModelLoadError(
                    f"{where}: {key} names {value!r}; a saved open_clip config names no files"
                )
            _check_names(value, where, allowed)
    elif isinstance(data, list):
        for value in data:
            _check_names(value, where, allowed)


def _hf_folder(folder: SavedFolder, value: Any, key: str, where: str) -> SavedFolder:
    """The subfolder a saved ``hf_tokenizer_name`` / ``hf_model_name`` names: inside, never a hub id."""
    try:
        found = folder.folder(value)
    except ModelLoadError as error:
        raise ModelLoadError(
            f"{where}: text_cfg.{key} must name a folder inside the saved model, not a path elsewhere "
            f"or a hub id ({error})"
        ) from None
    needed = ("tokenizer_config.json",) if key == "hf_tokenizer_name" else ("config.json",)
    for file in needed:
        found.file(file)
    if key == "hf_tokenizer_name" and not found.has_file("tokenizer.json"):
        raise ModelLoadError(f"{where}: the tokenizer folder {value!r} has no tokenizer.json")
    if key == "hf_model_name":
        check_numbers(
            found.read_json("config.json"), f"{found.label}/config.json", skip=("id2label", "label2id")
        )
    return found


def _check_tokenizer_kwargs(kwargs: Any, where: str) -> None:
    if kwargs is None:
        return
    if not isinstance(kwargs, dict) or set(kwargs) - TOKENIZER_KWARGS:
        raise ModelLoadError(
            f"{where}: text_cfg.tokenizer_kwargs may only set {sorted(TOKENIZER_KWARGS)}, got {kwargs!r:.120}"
        )


def _check_timm_name(name: Any, where: str) -> None:
    if name is None:
        return
    import timm

    # A plain architecture name: "hf-hub:..." or "local-dir:..." would make timm read elsewhere.
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name) or not timm.is_model(name):
        raise ModelLoadError(f"{where}: vision_cfg.timm_model_name {name!r} is not a timm architecture name")


def check_fits(model_config: Mapping[str, Any], weights: Path, where: str) -> None:
    """Build ``model_config`` on the ``meta`` device (no memory) and compare it with the saved weights."""
    name = register_config(model_config)
    try:
        with torch.device("meta"):
            probe = open_clip.create_model(
                name, pretrained=None, device="meta", pretrained_image=False, pretrained_text=False
            )
    except Exception as error:  # noqa: BLE001 - open_clip raises many kinds for a bad config
        raise ModelLoadError(
            f"{where} does not describe an open_clip model ({type(error).__name__}: {str(error)[:300]})"
        ) from None
    check_weights(probe, weights)
