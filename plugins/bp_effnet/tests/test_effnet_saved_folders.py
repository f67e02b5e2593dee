"""A saved EfficientNet folder loads within bounds, from its own weights; anything else is refused at load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_effnet import IMAGE_SIZE, TIMM_MODEL

import bpcore
from bpcore.testing.folders import edit_model_config, reason


@pytest.fixture
def saved(tiny_effnet, tmp_path) -> Path:
    return Path(bpcore.save(tiny_effnet, "tiny-effnet", path=tmp_path / "models" / "effnet"))


@pytest.mark.parametrize("size", [20000, 12000, 1025])
def test_a_saved_image_size_beyond_the_bound_is_refused_at_load(saved, tmp_path, size):
    # 20,000 px loaded, then the first call hit PIL's decompression-bomb check; 12,000 px ran out of memory.
    edit_model_config(saved, image_size=size)
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert f"image_size is {size}, outside the allowed range 16..1024" in reason(refused.value, tmp_path)


def test_an_image_size_beyond_the_bound_is_refused_at_construction(weights_file):
    from bp_effnet import EfficientNet

    with pytest.raises(bpcore.InputError) as refused:
        EfficientNet(TIMM_MODEL, pretrained=str(weights_file), image_size=20000)
    assert refused.value.field == "image_size" and "from 16 to 1024" in str(refused.value)
    assert EfficientNet(TIMM_MODEL, pretrained=str(weights_file), image_size=1024).image_size == 1024


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"weights": "../../elsewhere.safetensors"}, "it leaves the saved folder"),
        ({"model_path": "hf-hub:timm/efficientnet_b0.ra_in1k"}, "is not a timm architecture name"),
    ],
    ids=["weights-outside", "hub-architecture"],
)
def test_names_in_a_saved_config_stay_inside_and_offline(saved, tmp_path, changes, why):
    edit_model_config(saved, **changes)
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert why in reason(refused.value, tmp_path)


def test_weights_converted_to_integers_are_refused(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    path = saved / "efficientnet.safetensors"
    save_file({key: value.to(torch.int64) for key, value in load_file(path).items()}, path)
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert "wrong dtype" in reason(refused.value, tmp_path)


def test_a_saved_effnet_passes_the_folder_rules(weights_file):
    from bp_effnet import EfficientNet
    from bpcore.testing import Candidate
    from bpcore.testing.folder_checks import FOLDER_STATS, folder_checks

    candidate = Candidate(
        lambda: EfficientNet(
            TIMM_MODEL, pretrained=str(weights_file), image_size=IMAGE_SIZE, name="tiny-effnet"
        ),
        tasks=["image-classification"],
        inputs={"image-classification": {"labels": None}},
        name="tiny-effnet",
    )
    FOLDER_STATS.clear()
    for check in folder_checks(candidate):
        check(candidate)
    assert all(count >= 2 for count in FOLDER_STATS.values()), FOLDER_STATS
