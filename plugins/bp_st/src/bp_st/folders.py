"""Recognising a plain Sentence Transformers folder (what ``SentenceTransformer.save`` writes) as a bp-st model.

A folder with ``modules.json`` is one; bpcore then loads it as a saved bp-st model
(:meth:`bp_st.model.STModel.from_saved`): every module checked to be a Sentence Transformers
class inside the folder and the network compared with its weights before the library reads it.
Texts are cut at the folder's own limit (its ``max_seq_length``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpcore.plugins import TEXT_VECTORISATION, ModelLoadError, SavedFolder

DESCRIPTION = (
    "a Sentence Transformers folder written by SentenceTransformer.save (modules.json, safetensors weights)"
)
#: STModel's own default, for a folder that names no limit.
DEFAULT_MAX_LENGTH = 512
#: A limit beyond any encoder's positions is no limit the folder can mean.
MAX_LENGTH_BOUND = 1 << 20


def recognise(path: Path, task: str | None) -> dict[str, Any] | None:
    """What to load a Sentence Transformers folder as, or None when ``path`` is none."""
    if not path.is_dir():
        return None
    folder = SavedFolder(path)
    if not folder.has_file("modules.json"):
        return None
    return {
        "class": "bp_st.model:STModel",
        "model": {"folder": ".", "max_length": _max_length(folder)},
        "tasks": [TEXT_VECTORISATION],
    }


def _max_length(folder: SavedFolder) -> int:
    """The limit the folder's transformer module keeps, else STModel's default (within the encoder's positions).

    Sentence Transformers writes it as ``max_seq_length`` in ``sentence_bert_config.json`` (before
    version 6) or as the tokenizer's ``model_max_length``.
    """
    module = _transformer_folder(folder)
    if module is None:
        return DEFAULT_MAX_LENGTH
    positions = _read_int(module, "config.json", "max_position_embeddings") or DEFAULT_MAX_LENGTH
    for name, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        limit = _read_int(module, name, key)
        if limit is not None:
            return min(limit, positions)
    return min(DEFAULT_MAX_LENGTH, positions)


def _transformer_folder(folder: SavedFolder) -> SavedFolder | None:
    """The folder of the first module (the transformer, in every Sentence Transformers model bp-st loads)."""
    # A broken modules.json is from_saved's to report, with what is wrong: here it only means no limit.
    try:
        modules = folder.read_json("modules.json")
    except ModelLoadError:
        return None
    first = modules[0] if isinstance(modules, list) and modules else None
    path = first.get("path", "") if isinstance(first, dict) else None
    if not isinstance(path, str):
        return None
    if path == "":
        return folder
    try:
        return folder.folder(path)
    except ModelLoadError:
        return None


def _read_int(folder: SavedFolder, name: str, key: str) -> int | None:
    if not folder.has_file(name):
        return None
    try:
        value = folder.read_json(name)
    except ModelLoadError:
        return None
    found = value.get(key) if isinstance(value, dict) else None
    if isinstance(found, bool) or not isinstance(found, int) or not 1 <= found <= MAX_LENGTH_BOUND:
        return None
    return found
