"""``init_model``: a network of the caller's own making, checked to be a timm classifier."""

from __future__ import annotations

import pytest
import torch
from tiny_effnet import IMAGE_SIZE, TIMM_MODEL, single_label_data

import bpcore
from bp_effnet import EfficientNet

IMAGES, _ = single_label_data(3, seed=5)


def test_init_model_builds_the_network_the_weights_file_loads_into(weights_file, tiny_effnet):
    import timm

    built = []

    def build(name):
        built.append(timm.create_model(name, pretrained=False))
        return built[-1]

    model = EfficientNet(TIMM_MODEL, init_model=build, pretrained=weights_file, image_size=IMAGE_SIZE)
    assert model.model is built[0]
    torch.testing.assert_close(model.probabilities(IMAGES), tiny_effnet.probabilities(IMAGES))


def test_an_init_model_that_builds_no_timm_classifier_is_an_input_type_error():
    with pytest.raises(bpcore.InputTypeError, match="not a timm classification network") as caught:
        EfficientNet(TIMM_MODEL, init_model=lambda name: torch.nn.Linear(4, 2), pretrained=False)
    assert caught.value.field == "init_model" and "Linear" in str(caught.value)
