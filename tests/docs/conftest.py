"""Fixtures of the site's tests: the pages' examples run against tiny local models.

The pages create tasks with their default models (``bpcore.QA()``), as a user would. Here the
defaults are the spec suite's tiny models (``tests/spec/conftest.py``), registered by a run-time
plugin and named in ``BPCORE_DEFAULTS`` — never by editing an example. Text vectorisation uses
the tiny CLIP too (fast), and text classification gets a tiny finetunable classifier to start
finetuning from, as ``xlnet-base-cased`` is for the real default (the ``hf`` entry point is not
loaded, so that first-party model does not win; its classes are imported by path).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bpcore
from bpcore.plugins import manager as plugins

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _spec_fixtures() -> Any:
    """The spec suite's conftest, imported under a name of its own (it puts the plugins' tiny
    model builders, ``tiny_hf`` and ``tiny_clip``, on ``sys.path``)."""
    name = "bpcore_docs_spec_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "spec" / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


SPEC = _spec_fixtures()
#: The spec suite's session-scoped tiny model files, reused here.
tiny_folders = SPEC.tiny_folders

#: The plugins the pages run with: the repository's, but ``hf`` (its classes are imported by path).
PLUGINS = "st,clip,effnet"
#: Each task's tiny stand-in for its default, named in ``BPCORE_DEFAULTS``. Not text
#: classification's: a default the user names is never swapped for a finetunable one, so there the
#: tiny NLI model is the default a (run-time) plugin declares, as bp-hf declares deberta-base-mnli.
DEFAULTS = {
    **{task: name for task, name in SPEC.TINY_DEFAULTS.items() if task != "text-classification"},
    "text-vectorisation": "spec-tiny-clip",
}


class TinyClassifiers:
    """Text classification's tiny models: the zero-shot default, and the finetunable classifier
    finetuning the default starts from (as xlnet-base-cased is for deberta-base-mnli)."""

    def __init__(self, nli: Path, folder: Path) -> None:
        self.nli = nli
        self.folder = folder

    @bpcore.hookimpl
    def register_models(self, register: Any) -> None:
        register(
            name="docs-tiny-nli",
            factory="bp_hf.nli:HFNLIModel",
            tasks=["text-classification"],
            default_for=["text-classification"],
            init_kwargs={"model_path": str(self.nli)},
            description="A tiny random NLI model standing in for deberta-base-mnli",
        )
        register(
            name="docs-tiny-classifier",
            factory="bp_hf.sequence_classification:HFSeqTCModel",
            tasks=["text-classification"],
            finetunable=["text-classification"],
            default_finetune_for=["text-classification"],
            init_kwargs={"model_path": str(self.folder)},
            description="A tiny random BERT standing in for xlnet-base-cased",
        )


@pytest.fixture(scope="session")
def classifier_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_hf import tiny_bert_folder

    return tiny_bert_folder(
        tmp_path_factory.mktemp("docs-tiny") / "classifier", id2label={0: "LABEL_0", 1: "LABEL_1"}
    )


@pytest.fixture(autouse=True)
def isolated_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Overrides the core tests' fixture of that name: the pages run against the real plugins."""
    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", PLUGINS)
    monkeypatch.delenv("BPCORE_DEFAULTS", raising=False)
    plugins.reset()
    try:
        yield
    finally:
        plugins.reset()


@pytest.fixture
def tiny_defaults(
    tiny_folders: dict[str, Any], classifier_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The tiny models registered and named in ``BPCORE_DEFAULTS``; yields task -> model name."""
    names = [
        bpcore.register_plugin(SPEC.TinyDefaults(tiny_folders), name="docs-tiny-defaults"),
        bpcore.register_plugin(
            TinyClassifiers(tiny_folders["nli"], classifier_folder), name="docs-tiny-classifiers"
        ),
    ]
    monkeypatch.setenv("BPCORE_DEFAULTS", ",".join(f"{task}={model}" for task, model in DEFAULTS.items()))
    try:
        yield dict(DEFAULTS)
    finally:
        for name in names:
            bpcore.unregister_plugin(name)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models on a small shared machine run faster on one thread."""
