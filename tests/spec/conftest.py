"""Fixtures of the spec's acceptance suite: the repository's four plugins, tiny models as the defaults.

The spec's examples create tasks with their default models (``backprop.QA()``). Here the
defaults are tiny models built offline, swapped in the way a user would: registered by a
run-time plugin and named in ``BPCORE_DEFAULTS`` (read when a task picks its model). Text
vectorisation keeps its real default, all-MiniLM-L6-v2, which ships offline with bp-st.
Examples that name a hub id (``T5``, ``"distilgpt2"``) run in a fresh process where that id is
a tiny model in an offline hub cache (``bpcore.testing.hub_cache``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bpcore
from bpcore.plugins import manager as plugins

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
# The plugins' tiny model builders, imported by bare name as their own tests do.
for folder in ("bp_hf", "bp_clip"):
    sys.path.insert(0, str(PLUGINS / folder / "tests"))

#: The entry points of this repository's plugins (not the guide's example plugin).
FIRST_PARTY = "st,hf,clip,effnet"

#: The tiny models standing in for each task's default, by the name they are registered under.
TINY_DEFAULTS = {
    "qa": "spec-tiny-t5",
    "summarisation": "spec-tiny-t5",
    "emotion": "spec-tiny-t5",
    "text-generation": "spec-tiny-gpt2",
    "text-classification": "spec-tiny-nli",
    "image-classification": "spec-tiny-clip",
    "image-vectorisation": "spec-tiny-clip",
    "image-text-vectorisation": "spec-tiny-clip",
}


@pytest.fixture(autouse=True)
def isolated_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Overrides the core tests' fixture of that name: the spec runs against the real plugins."""
    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", FIRST_PARTY)
    monkeypatch.delenv("BPCORE_DEFAULTS", raising=False)
    plugins.reset()
    try:
        yield
    finally:
        plugins.reset()


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models on a small shared machine run faster on one thread."""


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny models' files: a T5, a GPT-2 and an NLI classifier folder, a CLIP config and checkpoint."""
    from tiny_clip import write_tiny_clip
    from tiny_hf import tiny_gpt2_folder, tiny_nli_folder, tiny_t5_folder

    root = tmp_path_factory.mktemp("spec-tiny")
    clip_config, clip_weights = write_tiny_clip(root / "clip")
    return {
        "t5": tiny_t5_folder(root / "t5"),
        "gpt2": tiny_gpt2_folder(root / "gpt2"),
        "nli": tiny_nli_folder(root / "nli"),
        "clip_config": clip_config,
        "clip_weights": clip_weights,
    }


class TinyDefaults:
    """A run-time plugin registering the tiny stand-ins under :data:`TINY_DEFAULTS`' names."""

    def __init__(self, folders: dict[str, Any]) -> None:
        self.folders = folders

    @bpcore.hookimpl
    def register_models(self, register: Any) -> None:
        generative = ["qa", "summarisation", "emotion", "text-generation"]
        image = [
            "image-classification",
            "image-vectorisation",
            "text-vectorisation",
            "image-text-vectorisation",
        ]
        register(
            name="spec-tiny-t5",
            factory="bp_hf.t5_multitask:T5QASummaryEmotion",
            tasks=generative,
            finetunable=generative,
            init_kwargs={"model_path": str(self.folders["t5"])},
            description="A tiny random T5 standing in for t5-base-qa-summary-emotion",
        )
        register(
            name="spec-tiny-gpt2",
            factory="bp_hf.generation:HFCausalLMTGModel",
            tasks=["text-generation"],
            finetunable=["text-generation"],
            init_kwargs={"model_path": str(self.folders["gpt2"])},
            description="A tiny random GPT-2 standing in for gpt2-medium",
        )
        register(
            name="spec-tiny-nli",
            factory="bp_hf.nli:HFNLIModel",
            tasks=["text-classification"],
            init_kwargs={"model_path": str(self.folders["nli"])},
            description="A tiny random NLI model standing in for deberta-base-mnli",
        )
        register(
            name="spec-tiny-clip",
            factory="bp_clip.model:CLIP",
            tasks=image,
            finetunable=image,
            init_kwargs={
                "model_path": str(self.folders["clip_config"]),
                "pretrained": str(self.folders["clip_weights"]),
            },
            description="A tiny random CLIP standing in for clip (ViT-B-32)",
        )


@pytest.fixture
def tiny_defaults(tiny_folders: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The tiny models registered and named in ``BPCORE_DEFAULTS``; yields task -> model name."""
    name = bpcore.register_plugin(TinyDefaults(tiny_folders), name="spec-tiny-defaults")
    monkeypatch.setenv(
        "BPCORE_DEFAULTS", ",".join(f"{task}={model}" for task, model in TINY_DEFAULTS.items())
    )
    try:
        yield dict(TINY_DEFAULTS)
    finally:
        bpcore.unregister_plugin(name)
