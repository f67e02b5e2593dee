"""Recognising a plain transformers folder (what ``save_pretrained`` writes) as a bp-hf model.

``bpcore.QA("/models/my-t5")``: bpcore asks :func:`recognise` about a path that is no
bpcore-saved folder. It reads ``config.json`` only (no torch, no transformers) and picks the
class from the architecture the folder was saved as:

- ``...ForSequenceClassification`` whose ``label2id`` names entailment and contradiction:
  :class:`~bp_hf.nli.HFNLIModel` (zero-shot); any other: :class:`~bp_hf.sequence_classification.HFSeqTCModel`.
- an encoder-decoder ``...ForConditionalGeneration``: :class:`~bp_hf.t5_multitask.T5QASummaryEmotion`
  for ``qa``, ``summarisation`` and ``emotion`` (its task prefixes), else
  :class:`~bp_hf.generation.HFSeq2SeqTGModel` for ``text-generation``.
- ``...ForCausalLM`` / ``...LMHeadModel``: :class:`~bp_hf.generation.HFCausalLMTGModel`.

The model then loads as a saved bp-hf model does (``from_saved``): the folder checked first,
``trust_remote_code`` off, safetensors weights only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpcore.plugins import (
    EMOTION,
    QA,
    SUMMARISATION,
    TEXT_CLASSIFICATION,
    TEXT_GENERATION,
    ModelLoadError,
    SavedFolder,
)

DESCRIPTION = (
    "a transformers folder written by save_pretrained (config.json naming a sequence-classification, "
    "seq2seq or causal-LM architecture, safetensors weights, tokenizer files)"
)
#: The tasks bp-hf serves only through the T5 multitask model's prefixes.
MULTITASK = (QA, SUMMARISATION, EMOTION)
#: ``from_saved``'s name for the saved folder itself (a bpcore save keeps it in a subfolder).
ROOT = "."


def recognise(path: Path, task: str | None) -> dict[str, Any] | None:
    """What to load a transformers folder as, or None when ``path`` is no transformers folder bp-hf can use."""
    if not path.is_dir():
        return None
    folder = SavedFolder(path)
    config = _transformers_config(folder)
    chosen = None if config is None else _choose(config, task)
    if chosen is None:
        return None
    model_class, tasks = chosen
    if not any(folder.has_file(name) for name in ("model.safetensors", "model.safetensors.index.json")):
        raise ModelLoadError(
            f"{path} is a transformers folder without safetensors weights (model.safetensors): bpcore loads no "
            "pickled weights (pytorch_model.bin); write them with save_pretrained(folder, safe_serialization=True)"
        )
    return {"class": model_class, "model": {"folder": ROOT}, "tasks": list(tasks)}


def _transformers_config(folder: SavedFolder) -> dict[str, Any] | None:
    if not folder.has_file("config.json") or folder.has_file("modules.json"):
        return None  # a Sentence Transformers folder is bp-st's
    try:
        config = folder.read_json("config.json")
    except ModelLoadError:
        return None
    if not isinstance(config, dict) or "model_type" not in config or "architectures" not in config:
        return None
    return config


def _choose(config: dict[str, Any], task: str | None) -> tuple[str, tuple[str, ...]] | None:
    """The model class and its tasks for a folder saved as ``config["architectures"]``."""
    architectures = [name for name in config.get("architectures") or [] if isinstance(name, str)]
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        if _is_nli(config.get("label2id")):
            return "bp_hf.nli:HFNLIModel", (TEXT_CLASSIFICATION,)
        return "bp_hf.sequence_classification:HFSeqTCModel", (TEXT_CLASSIFICATION,)
    if config.get("is_encoder_decoder") and any(
        name.endswith("ForConditionalGeneration") for name in architectures
    ):
        if task in MULTITASK:
            return "bp_hf.t5_multitask:T5QASummaryEmotion", (*MULTITASK, TEXT_GENERATION)
        return "bp_hf.generation:HFSeq2SeqTGModel", (TEXT_GENERATION,)
    if any(name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures):
        return "bp_hf.generation:HFCausalLMTGModel", (TEXT_GENERATION,)
    return None


def _is_nli(label2id: Any) -> bool:
    """Whether the labels name entailment and contradiction classes (as :func:`bp_hf.nli.nli_label_index` finds them)."""
    if not isinstance(label2id, dict):
        return False
    names = [str(label).lower() for label in label2id]
    return any(name.startswith("entail") for name in names) and any(
        name.startswith("contra") for name in names
    )
