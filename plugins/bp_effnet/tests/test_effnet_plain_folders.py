"""A plain timm EfficientNet, a save_for_hf folder or one weights file, is a model: the task answers as EfficientNet on it."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from tiny_effnet import (
    TIMM_MODEL,
    calibrate_batch_norm,
    coloured_image,
    damp_residual_branches,
    effnet_weights_file,
)

import bpcore
from bp_effnet import EfficientNet

LABELS = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def images() -> list:
    rng = random.Random(0)
    return [coloured_image(colour, rng) for colour in LABELS]


@pytest.fixture(scope="module")
def timm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-class EfficientNet-B0 written by timm's ``save_for_hf``, with its label names."""
    import timm
    import torch
    from timm.models import save_for_hf

    torch.manual_seed(0)
    network = timm.create_model(TIMM_MODEL, pretrained=False, num_classes=len(LABELS))
    damp_residual_branches(network)
    calibrate_batch_norm(network)
    folder = tmp_path_factory.mktemp("timm") / "my-effnet"
    save_for_hf(network, str(folder), model_config={"label_names": LABELS}, safe_serialization=True)
    return folder


def test_a_save_for_hf_folder_is_efficientnet_with_its_labels(timm_folder, images):
    ic = bpcore.ImageClassification(str(timm_folder))
    assert type(ic.model) is EfficientNet and ic.model.name == "my-effnet"
    assert ic.model.class_names == LABELS
    explicit = EfficientNet(
        f"{TIMM_MODEL}.ns_jft_in1k",
        pretrained=str(timm_folder / "model.safetensors"),
        labels=LABELS,
        image_size=224,
    )
    assert ic(images) == bpcore.ImageClassification(explicit)(images)


def test_a_weights_file_is_efficientnet_of_the_size_its_weights_have(weights_file, images):
    ic = bpcore.ImageClassification(str(weights_file))
    assert type(ic.model) is EfficientNet
    assert ic.model.timm_name == "tf_efficientnet_b0.aa_in1k"  # the spec's efficientnet-b0
    explicit = bpcore.ImageClassification(EfficientNet("efficientnet-b0", pretrained=str(weights_file)))
    assert ic(images, top_k=3) == explicit(images, top_k=3)


def test_a_weights_file_named_after_its_architecture_is_that_one(weights_file, tmp_path):
    named = Path(shutil.copy(weights_file, tmp_path / "efficientnet_b0.safetensors"))
    assert bpcore.load(named).timm_name == "efficientnet_b0"


def test_a_weights_file_of_other_classes_is_refused_for_want_of_labels(tmp_path):
    weights = effnet_weights_file(tmp_path, num_classes=3)
    with pytest.raises(
        bpcore.ModelLoadError, match="3 classes, not ImageNet's 1000, and a weights file names no labels"
    ):
        bpcore.ImageClassification(str(weights))


def test_a_folder_with_pickled_weights_only_is_refused_by_name(timm_folder, tmp_path):
    folder = Path(shutil.copytree(timm_folder, tmp_path / "pickled"))
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(bpcore.ModelLoadError, match="no pickled weights"):
        bpcore.ImageClassification(str(folder))


def test_other_files_are_not_efficientnets(tmp_path):
    text = tmp_path / "notes.safetensors"
    text.write_text("not weights")
    with pytest.raises(bpcore.ModelLoadError, match="no installed plugin recognises it"):
        bpcore.ImageClassification(str(text))
