"""Checking a saved Sentence Transformers folder before sentence-transformers reads it.

A saved folder is untrusted (SECURITY.md). Before :class:`~bp_st.STModel` hands it to
``SentenceTransformer``, :func:`check_saved_folder` checks what the library would read: each
module of ``modules.json`` is a Sentence Transformers class in a subfolder of the saved folder,
the transformer module has its config, weights and tokenizer files, its config's numbers are
within bounds (:data:`bpcore.saved_folder.SIZE_BOUNDS`), and the network it describes, built on
the ``meta`` device (no memory), fits the saved weights. After the load,
:func:`check_tokenizer_fits` checks that the tokenizer makes no id beyond the embeddings.
"""

from __future__ import annotations

import re
from typing import Any

from bpcore.plugins import (
    ModelLoadError,
    SavedFolder,
    check_numbers,
    check_paths,
    check_weights,
    safetensors_header,
)

MODULES_FILE = "modules.json"
#: Module classes a saved folder may name (anything else would import code the folder chose).
MODULE_PREFIX = "sentence_transformers."
#: What the transformer module's folder needs: without the tokenizer files a default one is built.
TRANSFORMER_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json")
#: The model methods a saved ``sentence_bert_config.json`` may have a module call.
METHOD = re.compile(r"forward|get_\w+_features")


def check_saved_folder(folder: SavedFolder) -> None:
    """Check a saved Sentence Transformers folder; a ModelLoadError names what is wrong."""
    modules = folder.read_json(MODULES_FILE)
    if (
        not isinstance(modules, list)
        or not modules
        or not all(isinstance(module, dict) for module in modules)
    ):
        raise ModelLoadError(f"{folder.label}: {MODULES_FILE} is not a list of modules")
    for index, module in enumerate(modules):
        kind, path = module.get("type"), module.get("path", "")
        if not isinstance(kind, str) or not kind.startswith(MODULE_PREFIX):
            raise ModelLoadError(
                f"{folder.label}: module {index} has type {kind!r}, not a Sentence Transformers class"
            )
        module_folder = folder if path == "" else folder.folder(path)
        # Every JSON file but the tokenizer's own (large, and read by the tokenizers library, which takes no paths).
        for name in sorted(
            entry.name for entry in module_folder.path.glob("*.json") if entry.name != "tokenizer.json"
        ):
            check_paths(module_folder, module_folder.read_json(name), f"{module_folder.label}/{name}")
        if module_folder.has_file("config.json"):
            config = module_folder.read_json("config.json")
            check_numbers(config, f"{module_folder.label}/config.json", skip=("id2label", "label2id"))
            if isinstance(config, dict) and "model_type" in config:
                check_transformer_module(module_folder)


def check_transformer_module(folder: SavedFolder) -> None:
    """The transformer module: its files are there, it calls only model methods that encode, it fits its weights."""
    for name in TRANSFORMER_FILES:
        folder.file(name)
    if folder.has_file("sentence_bert_config.json"):
        settings = folder.read_json("sentence_bert_config.json")
        modalities = settings.get("modality_config") if isinstance(settings, dict) else None
        for modality, options in (modalities or {}).items():
            method = options.get("method") if isinstance(options, dict) else None
            if method is not None and not (isinstance(method, str) and METHOD.fullmatch(method)):
                raise ModelLoadError(
                    f"{folder.label}/sentence_bert_config.json: the {modality} modality calls {method!r}, "
                    "not an encoding method (forward or get_*_features)"
                )
    check_fits(folder)


def check_fits(folder: SavedFolder) -> None:
    """Build the transformer the config describes on the ``meta`` device and compare it with the weights.

    A size the weights do not have, weights of the wrong dtype, or a layer the weights lack (it
    would be initialised at random) is refused before anything is allocated.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        with torch.device("meta"):
            probe = AutoModel.from_config(config)
    except Exception as error:  # noqa: BLE001 - transformers raises many kinds for a bad config
        raise ModelLoadError(
            f"{folder.label}: the saved config does not describe a model ({type(error).__name__}: {str(error)[:300]})"
        ) from None
    weights = folder.file("model.safetensors")
    check_weights(probe, weights)
    saved = set(safetensors_header(weights))
    tied = getattr(probe, "all_tied_weights_keys", None) or getattr(probe, "_tied_weights_keys", None) or {}
    missing = sorted(key for key in probe.state_dict() if key not in saved and key not in set(tied))
    if missing:
        raise ModelLoadError(
            f"{folder.label}: the saved weights do not match the saved config (missing: {missing[:5]})"
        )


#: Text the loaded tokenizer encodes once, alone and as a pair, to see the ids it makes.
PROBE_TEXTS = ("A probe sentence, with punctuation: 42!", "And a second one?")


def check_tokenizer_fits(transformer: Any, where: str) -> None:
    """The transformer module's tokenizer makes no token id beyond its embeddings, nor a token type it lacks."""
    tokenizer, model = getattr(transformer, "tokenizer", None), getattr(transformer, "auto_model", None)
    if tokenizer is None or model is None or not hasattr(model, "get_input_embeddings"):
        return
    rows = getattr(model.get_input_embeddings(), "num_embeddings", None)
    if not isinstance(rows, int):
        return
    highest = max(tokenizer.get_vocab().values(), default=-1)
    encoded = tokenizer(*PROBE_TEXTS, return_token_type_ids=True)
    if highest >= rows or any(not 0 <= index < rows for index in encoded["input_ids"]):
        raise ModelLoadError(f"{where}: the tokenizer makes token ids beyond the model's {rows} embeddings")
    types = getattr(model.config, "type_vocab_size", None)
    if isinstance(types, int) and any(not 0 <= kind < types for kind in encoded.get("token_type_ids") or []):
        raise ModelLoadError(f"{where}: the tokenizer makes token types beyond the model's {types}")
