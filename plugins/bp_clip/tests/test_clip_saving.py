"""Saving CLIP models (finetuned heads included) and loading them back: identical, offline, nothing run."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_clip import build_tiny_clip, make_image

import bpcore

IMAGES = [
    make_image("red", seed=1),
    make_image("blue", "stripes", seed=2),
    make_image("green", "checks", seed=3),
]
TEXTS = ["a red square", "blue stripes", "green checks"]
LABELS = ["red", "blue", "green"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny CLIP finetuned for single-label classification (so it has a learned head)."""
    model = build_tiny_clip(tmp_path_factory.mktemp("classifier"), seed=1)
    ic = bpcore.ImageClassification(model)
    with pytest.warns(UserWarning):
        ic.finetune(
            {"images": IMAGES * 2, "labels": LABELS * 2},
            validation_split=0.0,
            epochs=2,
            seed=0,
            configure_optimizers=lambda: torch.optim.AdamW(model.parameters(), lr=3e-3),
        )
    return model


def test_a_saved_model_loads_by_name_with_identical_outputs(classifier, bpcore_home):
    folder = bpcore.save(classifier, "tiny-clip-classifier", description="colours")

    loaded = bpcore.load("tiny-clip-classifier")
    assert loaded.name == "tiny-clip-classifier" and loaded.description == "colours"
    assert loaded.labels == classifier.labels and not loaded.multi_label
    for task, payload in (
        ("image-vectorisation", {"image": IMAGES}),
        ("text-vectorisation", {"text": TEXTS}),
        ("image-text-vectorisation", {"image": IMAGES, "text": TEXTS}),
    ):
        expected = classifier(payload, task=task, return_tensor=True)
        assert torch.allclose(loaded(payload, task=task, return_tensor=True), expected, atol=1e-6)
    ic = bpcore.ImageClassification(str(folder))
    original = bpcore.ImageClassification(classifier)
    for labels in (None, ["cat", "dog"]):  # the learned labels survive; passed labels stay zero-shot
        for answer, expected in zip(ic(IMAGES, labels), original(IMAGES, labels)):
            assert list(answer) == list(expected)
            assert answer == pytest.approx(expected, abs=1e-6)


def test_the_folder_holds_json_and_safetensors_only(classifier, bpcore_home):
    folder = bpcore.save(classifier, "tiny-clip-files")
    config = json.loads((folder / "config.json").read_text())
    assert config["class"] == "bp_clip.model:CLIP"
    assert config["model"]["extra"] == {"labels": classifier.labels, "multi_label": False}
    open_clip_config = json.loads((folder / config["model"]["config"]).read_text())
    assert open_clip_config["model_cfg"] == classifier.model_config
    assert sorted(path.name for path in folder.glob("*.safetensors")) == [
        "head.safetensors",
        "open_clip_model.safetensors",
    ]
    assert (
        not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt")) and not list(folder.rglob("*.py"))
    )


def test_a_saved_config_cannot_point_outside_its_folder(classifier, bpcore_home):
    folder = bpcore.save(classifier, "tiny-clip-escape")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["weights"] = "../../elsewhere.safetensors"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.ModelLoadError, match="bad file"):
        bpcore.load(folder)


def test_a_saved_model_loads_offline_in_a_fresh_process(classifier, bpcore_home, run_python):
    folder = bpcore.save(classifier, "tiny-clip-offline")
    expected = bpcore.ImageVectorisation(classifier)(IMAGES[0])
    IMAGES[0].save(bpcore_home / "red.png")

    code = f"""
import json, socket
def no_network(*args, **kwargs):
    raise OSError("no network in this test")
socket.socket.connect = no_network
import bpcore
model = bpcore.load({str(folder)!r})
print(json.dumps([bpcore.ImageVectorisation(model)({str(bpcore_home / "red.png")!r}), model.labels]))
"""
    result = run_python(code, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    vector, labels = json.loads(result.stdout.splitlines()[-1])
    assert torch.allclose(torch.tensor(vector), torch.tensor(expected), atol=1e-6)
    assert labels == classifier.labels
