"""Spec chapter 6's module paths (``backprop.models.<path>``, read as ``bpcore.models.<path>``) give the plugins' classes.

The first-party plugins declare them (``register_module_aliases``); the core's own are
``generic_models`` and ``auto_model``. Each path must give the very class object the plugin defines.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from bpcore.plugins import manager

#: spec module path → (class name, the plugin module that defines it)
SPEC_PATHS = {
    "clip": ("CLIP", "bp_clip.model"),
    "clip.module": ("CLIP", "bp_clip.model"),
    "clip.model": ("CLIP", "bp_clip.model"),
    "efficientnet": ("EfficientNet", "bp_effnet.model"),
    "efficientnet.model": ("EfficientNet", "bp_effnet.model"),
    "hf_causallm_tg_model": ("HFCausalLMTGModel", "bp_hf.generation"),
    "hf_causallm_tg_model.model": ("HFCausalLMTGModel", "bp_hf.generation"),
    "hf_nli_model": ("HFNLIModel", "bp_hf.nli"),
    "hf_nli_model.model": ("HFNLIModel", "bp_hf.nli"),
    "hf_seq2seq_tg_model": ("HFSeq2SeqTGModel", "bp_hf.generation"),
    "hf_seq2seq_tg_model.model": ("HFSeq2SeqTGModel", "bp_hf.generation"),
    "hf_seq_tc_model": ("HFSeqTCModel", "bp_hf.sequence_classification"),
    "hf_seq_tc_model.model": ("HFSeqTCModel", "bp_hf.sequence_classification"),
    "st_model": ("STModel", "bp_st.model"),
    "st_model.model": ("STModel", "bp_st.model"),
    "t5_qa_summary_emotion": ("T5QASummaryEmotion", "bp_hf.t5_multitask"),
    "t5_qa_summary_emotion.model": ("T5QASummaryEmotion", "bp_hf.t5_multitask"),
    "generic_models": ("HFModel", "bp_hf.base"),
    "auto_model": ("AutoModel", "bpcore.models.auto"),
}
GENERIC = {
    "BaseModel": "bpcore.models.base",
    "PathModel": "bpcore.models.base",
    "HFModel": "bp_hf.base",
    "HFTextGenerationModel": "bp_hf.base",
}


@pytest.fixture(autouse=True)
def installed_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The installed first-party plugins, not the core tests' isolated set."""
    monkeypatch.delenv("BPCORE_LOAD_PLUGINS", raising=False)
    manager.reset()
    yield
    manager.reset()


@pytest.mark.parametrize("path", sorted(SPEC_PATHS))
def test_a_spec_module_path_gives_the_plugins_class(path):
    name, defined_in = SPEC_PATHS[path]
    module = importlib.import_module(f"bpcore.models.{path}")
    assert getattr(module, name) is getattr(importlib.import_module(defined_in), name)


@pytest.mark.parametrize("name", sorted(GENERIC))
def test_generic_models_holds_the_specs_generic_classes(name):
    from bpcore.models import generic_models

    assert getattr(generic_models, name) is getattr(importlib.import_module(GENERIC[name]), name)


def test_from_backprop_style_imports():
    from bpcore.models.clip import CLIP
    from bpcore.models.efficientnet.model import EfficientNet
    from bpcore.models.hf_nli_model.model import HFNLIModel

    assert CLIP.__module__ == "bp_clip.model"
    assert EfficientNet.__module__ == "bp_effnet.model"
    assert HFNLIModel.__module__ == "bp_hf.nli"


def test_the_first_party_plugins_register_every_spec_path_without_problems():
    from bpcore.plugins.registry import get_registry

    registry = get_registry()
    assert set(SPEC_PATHS) - {"generic_models", "auto_model"} <= set(registry.module_aliases)
    assert not [problem for problem in registry.problems if "module path" in problem.message]
