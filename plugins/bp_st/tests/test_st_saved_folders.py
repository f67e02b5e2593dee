"""A saved Sentence Transformers folder loads from inside itself, whole and within bounds (all-MiniLM-L6-v2)."""

from __future__ import annotations

from pathlib import Path

import pytest

import bpcore
from bpcore.testing.folders import edit_json, reason


@pytest.fixture(scope="module")
def minilm():
    from bpcore.models import AutoModel

    return AutoModel.from_pretrained("all-minilm-l6-v2")


@pytest.fixture
def saved(minilm, tmp_path) -> Path:
    return Path(bpcore.save(minilm, path=tmp_path / "models" / "minilm"))


def set_module_type(modules: list) -> None:
    modules[2]["type"] = "this.Normalize"


def set_module_path(modules: list) -> None:
    modules[1]["path"] = "../../elsewhere"


@pytest.mark.parametrize(
    ("file", "change", "why"),
    [
        ("modules.json", set_module_type, "not a Sentence Transformers class"),
        ("modules.json", set_module_path, "it leaves the saved folder"),
        (
            "config.json",
            lambda config: config.update(vocab_size=10**9),
            "vocab_size is 1000000000, beyond the bound",
        ),
        (
            "config.json",
            lambda config: config.update(num_hidden_layers=7),
            "missing",
        ),  # a layer with no weights
        ("config.json", lambda config: config.update(hidden_size=768), "does not match the weights"),
        (
            "tokenizer.json",
            lambda tokenizer: tokenizer["model"]["vocab"].update({"the": 10**6}),
            "beyond the model's 30522 embeddings",
        ),
        (
            "sentence_bert_config.json",
            lambda settings: settings["modality_config"]["text"].update(method="save_pretrained"),
            "not an encoding method",
        ),
    ],
    ids=["module-type", "module-path", "vocab-size", "extra-layer", "hidden-size", "token-id", "method"],
)
def test_a_damaged_folder_is_refused_at_load(saved, tmp_path, file, change, why):
    edit_json(saved / "sentence-transformer" / file, change)
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert why in reason(refused.value, tmp_path)


def test_a_folder_without_its_tokenizer_is_refused(saved, tmp_path):
    (saved / "sentence-transformer" / "tokenizer.json").unlink()
    edit_json(
        saved / "config.json", lambda config: config.pop("files")
    )  # as someone editing the folder would
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert "has no file 'tokenizer.json'" in reason(refused.value, tmp_path)


def test_the_saved_minilm_passes_the_folder_rules():
    from bpcore.testing import Candidate
    from bpcore.testing.folder_checks import FOLDER_STATS, folder_checks

    candidate = Candidate.registered("all-minilm-l6-v2")
    FOLDER_STATS.clear()
    for check in folder_checks(candidate):
        check(candidate)
    assert all(count >= 10 for count in FOLDER_STATS.values()), FOLDER_STATS
