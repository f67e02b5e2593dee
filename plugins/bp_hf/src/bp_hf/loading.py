"""Loading and saving Hugging Face folders, with bpcore's errors.

Offline, a hub id that is not cached fails to load: the error names the model and tells the
user to pass a local folder. Saved folders are untrusted, so ``trust_remote_code`` stays off (transformers writes
safetensors, and reads any legacy ``.bin`` with ``torch.load(weights_only=True)``).

Before transformers reads a saved folder, :func:`check_saved_folder` checks what it would read:
the files a model needs are there (never a stand-in tokenizer built from defaults), no name in
its JSON files points elsewhere, and every number that sizes the network or its work is within
a bound (:data:`bpcore.saved_folder.SIZE_BOUNDS`, :data:`GENERATION_BOUNDS`); token ids and
label ids stay within the vocabulary and the labels. :func:`check_weights_fit` then builds the
network on the ``meta`` device (no memory) and compares it with the saved weights, so a config
that does not match its weights is refused before anything is allocated; the real load refuses
missing, unexpected or mismatched weights, and :func:`check_tokenizer_fits` that the tokenizer
makes no id beyond the model's embeddings.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from bpcore.plugins import (
    BarSwitch,
    ModelLoadError,
    SavedFolder,
    check_numbers,
    check_paths,
    check_weights,
    quiet,
)

#: The subfolder of a saved bpcore model that holds the transformers model and its tokenizer.
SAVED_FOLDER = "transformers"


#: The files a saved transformers folder needs besides its weights (without them transformers
#: builds a default tokenizer from the model type: a stand-in that answers garbage).
REQUIRED_FILES = ("config.json", "tokenizer_config.json")
#: Tokenizer files, one of which a saved folder needs (``tokenizer.json`` for the tokenizers backend).
TOKENIZER_FILES = (
    "tokenizer.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
)
#: The JSON files transformers reads from a saved folder: no path in them may lead outside it.
READ_JSON_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors.index.json",
)
#: Generation settings that multiply the work per prompt (beams, sequences) or its length.
GENERATION_BOUNDS = {
    "num_beams": 64,
    "num_return_sequences": 64,
    "num_beam_groups": 64,
    "max_length": 1 << 20,
    "max_new_tokens": 1 << 20,
    "min_length": 1 << 20,
    "min_new_tokens": 1 << 20,
}
#: Keys whose integers are token ids (within the vocabulary).
TOKEN_ID_KEY = re.compile(r"(token_ids?|suppress_tokens|bad_words_ids)$")

# Set while a saved folder loads: the load then refuses missing, unexpected or mismatched weights
# (for a hub model those are normal: a new head is initialised for finetuning).
_STRICT: ContextVar[bool] = ContextVar("bp_hf_strict_weights", default=False)


@contextlib.contextmanager
def strict_weights() -> Iterator[None]:
    """Within the block, :func:`load_pretrained` refuses weights that do not cover the model exactly."""
    token = _STRICT.set(True)
    try:
        yield
    finally:
        _STRICT.reset(token)


def transformers_bars() -> BarSwitch:
    """transformers' progress-bar switch ("Loading weights", "Writing model shards"), for :func:`quiet`."""
    from transformers.utils import logging as hf_logging

    return hf_logging.is_progress_bar_enabled, hf_logging.disable_progress_bar, hf_logging.enable_progress_bar


def load_pretrained(loader: Callable[..., Any], path: str, label: str, what: str, **kwargs: Any) -> Any:
    """``loader(path, **kwargs)`` (a ``from_pretrained``), turning every failure into a ModelLoadError."""
    strict = _STRICT.get()
    try:
        with quiet(transformers_bars()):
            loaded = loader(
                path, trust_remote_code=False, **({"output_loading_info": True} if strict else {}), **kwargs
            )
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, ImportError) as error:
        raise load_error(label, path, what, error) from error
    if not strict:
        return loaded
    model, info = loaded
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        names = sorted(str(name) for name in info.get(kind) or ())
        if names:
            raise ModelLoadError(
                f"{path}: the saved weights do not match the saved config ({kind.replace('_', ' ')}: {names[:5]})"
            )
    return model


def load_tokenizer(loader: Callable[..., Any], path: str, label: str) -> Any:
    try:
        with quiet(transformers_bars()):
            return loader(path, trust_remote_code=False)
    except (OSError, ValueError, KeyError, ImportError) as error:
        raise load_error(label, path, "tokenizer", error) from error


def load_error(label: str, path: str, what: str, error: BaseException) -> ModelLoadError:
    return ModelLoadError.for_path(
        label,
        path,
        error,
        kind=f"transformers {what}",
        needs="what save_pretrained writes (config.json, safetensors weights, tokenizer files)",
        save_with="save_pretrained(folder) for both the model and its tokenizer",
    )


def save_pretrained(model: Any, tokenizer: Any, directory: Path) -> str:
    """Write ``model`` and ``tokenizer`` with ``save_pretrained`` (safetensors) into the saved folder."""
    folder = Path(directory) / SAVED_FOLDER
    with quiet(transformers_bars()):
        model.save_pretrained(str(folder))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(folder))
    return SAVED_FOLDER


# -- checking a saved folder before transformers reads it -------------------------------------------


def check_saved_folder(folder: SavedFolder) -> list[Path]:
    """Check a saved transformers folder before anything reads it; return its safetensors weight files.

    Refused with a ModelLoadError: a missing config or tokenizer file, a path in a JSON file
    that leaves the folder, a number beyond its bound, a token or label id out of range.
    """
    for name in REQUIRED_FILES:
        folder.file(name)
    if not any(folder.has_file(name) for name in TOKENIZER_FILES):
        raise ModelLoadError(f"{folder.label} holds no tokenizer files (one of {', '.join(TOKENIZER_FILES)})")
    tokenizer_config = folder.read_json("tokenizer_config.json")
    if not isinstance(tokenizer_config, dict):
        raise ModelLoadError(f"{folder.label}: tokenizer_config.json is not a JSON object")
    # transformers 5 writes which backend a tokenizer uses; the tokenizers backend reads tokenizer.json.
    if tokenizer_config.get("backend") == "tokenizers" and not folder.has_file("tokenizer.json"):
        raise ModelLoadError(f"{folder.label} has no file 'tokenizer.json', which its tokenizer needs")
    for name in READ_JSON_FILES:
        if folder.has_file(name):
            check_paths(folder, folder.read_json(name), name)
    config = folder.read_json("config.json")
    if not isinstance(config, dict):
        raise ModelLoadError(f"{folder.label}: config.json is not a JSON object")
    check_numbers(config, f"{folder.label}/config.json", skip=("id2label", "label2id"))
    check_labels(config, f"{folder.label}/config.json")
    vocabulary = config.get("vocab_size")
    check_token_ids(config, vocabulary, f"{folder.label}/config.json")
    if folder.has_file("generation_config.json"):
        generation = folder.read_json("generation_config.json")
        check_numbers(generation, f"{folder.label}/generation_config.json", bounds=GENERATION_BOUNDS)
        check_token_ids(generation, vocabulary, f"{folder.label}/generation_config.json")
    return weight_files(folder)


def check_labels(config: Mapping[str, Any], where: str) -> None:
    """``id2label`` is numbered 0..n-1 and ``label2id`` maps into it: no label index beyond the head."""
    id2label = config.get("id2label") or {}
    label2id = config.get("label2id") or {}
    if not isinstance(id2label, dict) or not isinstance(label2id, dict):
        raise ModelLoadError(f"{where}: id2label and label2id must be JSON objects")
    count = len(id2label)
    if sorted(str(key) for key in id2label) != sorted(str(index) for index in range(count)):
        raise ModelLoadError(f"{where}: id2label must number its labels 0..{count - 1}")
    for label, index in label2id.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < max(count, 1):
            raise ModelLoadError(
                f"{where}: label2id gives {label!r} the index {index!r}, beyond the {count} labels"
            )
    labels = config.get("num_labels")
    if labels is not None and count and labels != count:
        raise ModelLoadError(f"{where}: num_labels is {labels!r} but id2label names {count} labels")


def check_token_ids(data: Any, vocabulary: Any, where: str, key: str = "") -> None:
    """Each integer under a token-id key of ``data`` is a token of the vocabulary (or -1: none)."""
    if isinstance(vocabulary, bool) or not isinstance(vocabulary, int):
        return
    if isinstance(data, dict):
        for child_key, value in data.items():
            check_token_ids(value, vocabulary, where, str(child_key))
    elif isinstance(data, list):
        for value in data:
            check_token_ids(value, vocabulary, where, key)
    elif isinstance(data, int) and not isinstance(data, bool) and TOKEN_ID_KEY.search(key):
        if not -1 <= data < vocabulary:
            raise ModelLoadError(f"{where}: {key} {data} is not a token of the {vocabulary}-token vocabulary")


def weight_files(folder: SavedFolder) -> list[Path]:
    """The safetensors files of a saved folder: ``model.safetensors``, or the shards its index names."""
    if folder.has_file("model.safetensors"):
        return [folder.file("model.safetensors")]
    if not folder.has_file("model.safetensors.index.json"):
        raise ModelLoadError(f"{folder.label} has no file 'model.safetensors': the saved weights are missing")
    index = folder.read_json("model.safetensors.index.json")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelLoadError(f"{folder.label}: model.safetensors.index.json has no weight_map")
    return [folder.file(name) for name in sorted(set(weight_map.values()), key=str)]


def check_weights_fit(folder: SavedFolder, model_class: Any, weights: list[Path]) -> None:
    """Build the network the saved config describes on the ``meta`` device and compare it with the weights.

    No memory is allocated, so a size the weights do not have (or weights of the wrong dtype)
    is refused before the real load would allocate it.
    """
    import torch
    from transformers import AutoConfig

    if model_class is None:
        return
    build = getattr(model_class, "from_config", None) or model_class._from_config
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        with torch.device("meta"):
            probe = build(config)
    except Exception as error:  # noqa: BLE001 - transformers raises many kinds for a bad config
        raise ModelLoadError(
            f"{folder.label}: the saved config does not describe a model ({type(error).__name__}: {str(error)[:300]})"
        ) from None
    for path in weights:
        check_weights(probe, path)


#: Text the loaded tokenizer encodes once, alone and as a pair, to see the ids it makes.
PROBE_TEXTS = ("A probe sentence, with punctuation: 42!", "And a second one?")


def check_tokenizer_fits(tokenizer: Any, model: Any, where: str) -> None:
    """The tokenizer makes no token id beyond the model's embeddings, nor a token type it lacks."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    if not isinstance(rows, int):
        return
    vocabulary = tokenizer.get_vocab()
    highest = max(vocabulary.values(), default=-1)
    if highest >= rows:
        token = max(vocabulary, key=vocabulary.__getitem__)
        raise ModelLoadError(
            f"{where}: the tokenizer gives {token!r} the id {highest}, beyond the model's {rows} embeddings"
        )
    encoded = tokenizer(*PROBE_TEXTS, return_token_type_ids=True)
    if any(not 0 <= index < rows for index in encoded["input_ids"]):
        raise ModelLoadError(f"{where}: the tokenizer makes token ids beyond the model's {rows} embeddings")
    types = getattr(model.config, "type_vocab_size", None)
    if isinstance(types, int) and any(not 0 <= kind < types for kind in encoded.get("token_type_ids") or []):
        raise ModelLoadError(f"{where}: the tokenizer makes token types beyond the model's {types}")
