"""Loading and saving Hugging Face folders, with bpcore's errors.

Offline, a hub id that is not cached fails to load: the error names the model and tells the
user to pass a local folder. Saved folders are untrusted, so ``trust_remote_code`` stays off (transformers writes
safetensors, and reads any legacy ``.bin`` with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bpcore.errors import ModelLoadError

#: The subfolder of a saved bpcore model that holds the transformers model and its tokenizer.
SAVED_FOLDER = "transformers"


def load_pretrained(loader: Callable[..., Any], path: str, label: str, what: str, **kwargs: Any) -> Any:
    """``loader(path, **kwargs)`` (a ``from_pretrained``), turning every failure into a ModelLoadError."""
    try:
        return loader(path, trust_remote_code=False, **kwargs)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, ImportError) as error:
        raise load_error(label, path, what, error) from error


def load_tokenizer(loader: Callable[..., Any], path: str, label: str) -> Any:
    try:
        return loader(path, trust_remote_code=False)
    except (OSError, ValueError, KeyError, ImportError) as error:
        raise load_error(label, path, "tokenizer", error) from error


def load_error(label: str, path: str, what: str, error: BaseException) -> ModelLoadError:
    if Path(path).is_dir():
        why = f"the folder {path} does not hold a loadable transformers {what}"
        hint = "check the folder: it needs what save_pretrained writes (config.json, safetensors weights, tokenizer files)"
    else:
        why = f"{path!r} is not a local folder, and it could not be downloaded from the Hugging Face hub (offline?)"
        hint = (
            "pass the path of a local folder instead (model_path='/models/my-model'), written with "
            "save_pretrained(folder) for both the model and its tokenizer where the hub is reachable"
        )
    return ModelLoadError(f"cannot load model {label!r}: {why}; {hint} ({type(error).__name__}: {error})")


def save_pretrained(model: Any, tokenizer: Any, directory: Path) -> str:
    """Write ``model`` and ``tokenizer`` with ``save_pretrained`` (safetensors) into the saved folder."""
    folder = Path(directory) / SAVED_FOLDER
    model.save_pretrained(str(folder))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))
    return SAVED_FOLDER
