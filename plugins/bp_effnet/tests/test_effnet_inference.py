"""ImageNet inference: answer shape and order, top_k, batches, image kinds, labels and image errors, weights files."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from tiny_effnet import IMAGE_SIZE, TIMM_MODEL, effnet_weights_file, single_label_data

import bpcore
from bp_effnet import EfficientNet
from bpcore.images import img_to_base64

IMAGES, _ = single_label_data(3, seed=5)


@pytest.fixture
def ic(tiny_effnet):
    return bpcore.ImageClassification(tiny_effnet)


def test_imagenet_answers_cover_the_1000_classes_sorted_and_summing_to_one(ic):
    answer = ic(IMAGES[0])
    assert len(answer) == 1000
    assert "goldfish, Carassius auratus" in answer
    probabilities = list(answer.values())
    assert probabilities == sorted(probabilities, reverse=True)
    assert math.isclose(sum(probabilities), 1.0, rel_tol=1e-4)
    assert all(isinstance(value, float) for value in probabilities)


def test_the_order_follows_the_networks_logits(ic, tiny_effnet):
    from bp_effnet.imagenet import imagenet_labels

    answer = ic(IMAGES[1], top_k=5)
    with torch.inference_mode():
        logits = tiny_effnet.model(tiny_effnet.preprocess([IMAGES[1]]))[0]
    assert list(answer) == [imagenet_labels()[index] for index in logits.topk(5).indices.tolist()]


def test_top_k_keeps_the_most_probable(ic):
    everything = ic(IMAGES[0])
    top = ic(IMAGES[0], top_k=3)
    assert list(top) == list(everything)[:3]
    assert top == pytest.approx({label: everything[label] for label in top}, rel=1e-4)


def test_a_batch_answers_as_single_calls_and_runs_in_real_batches(ic, tiny_effnet):
    forwards = []
    handle = tiny_effnet.model.register_forward_hook(
        lambda module, args, output: forwards.append(len(args[0]))
    )
    tiny_effnet.inference_batch_size = 4
    try:
        batch = ic(IMAGES + IMAGES[:2], top_k=4)
    finally:
        handle.remove()
    assert forwards == [4, 4, 3]
    assert len(batch) == len(IMAGES) + 2
    for image, answer in zip(IMAGES, batch):
        single = ic(image, top_k=4)
        assert list(single) == list(answer)
        assert list(single.values()) == pytest.approx(list(answer.values()), abs=1e-5)


def test_paths_base64_and_pil_images_give_the_same_answer(ic, tmp_path):
    path = tmp_path / "red.png"
    IMAGES[0].save(path)
    answers = [ic(image, top_k=3) for image in (str(path), img_to_base64(IMAGES[0]), IMAGES[0])]
    assert list(answers[0]) == list(answers[1]) == list(answers[2])


def test_given_labels_are_an_error_that_points_to_clip(ic):
    with pytest.raises(bpcore.InputError) as caught:
        ic(IMAGES[0], ["cat", "dog"])
    assert "clip" in str(caught.value) and "ImageNet" in str(caught.value)
    assert "input.labels" in str(caught.value)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("/no/such/folder/cat.png", "no image file"),
        ("%%%not-base64%%%", "neither an existing file nor valid base64"),
    ],
)
def test_bad_images_name_the_field_and_item(ic, bad, says):
    with pytest.raises(bpcore.InputError) as caught:
        ic([IMAGES[0], bad])
    assert "input.image[1]" in str(caught.value) and says in str(caught.value)


def test_a_torch_state_dict_file_loads_like_safetensors(weights_dir, tiny_effnet):
    from_torch = EfficientNet(
        TIMM_MODEL, pretrained=effnet_weights_file(weights_dir, suffix=".pt"), image_size=IMAGE_SIZE
    )
    torch.testing.assert_close(from_torch.probabilities(IMAGES), tiny_effnet.probabilities(IMAGES))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as file:
        pickle.dump({"classifier.weight": EvilTensor()}, file)
    with pytest.raises(bpcore.ModelLoadError, match="without unpickling code"):
        EfficientNet(TIMM_MODEL, pretrained=path)


class EvilTensor:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_weights_of_another_network_and_a_missing_file_are_model_load_errors(weights_file, tmp_path):
    with pytest.raises(bpcore.ModelLoadError, match="do not fit"):
        EfficientNet("efficientnet_b1", pretrained=weights_file)
    with pytest.raises(bpcore.ModelLoadError, match="no weights file"):
        EfficientNet(TIMM_MODEL, pretrained=tmp_path / "missing.safetensors")


def test_a_head_of_other_classes_needs_its_labels(weights_dir):
    five = effnet_weights_file(weights_dir, num_classes=3)
    with pytest.raises(bpcore.ModelLoadError, match="labels="):
        EfficientNet(TIMM_MODEL, pretrained=five)
    model = EfficientNet(TIMM_MODEL, pretrained=five, labels=["a", "b", "c"], image_size=IMAGE_SIZE)
    assert set(bpcore.ImageClassification(model)(IMAGES[0])) == {"a", "b", "c"}
    with pytest.raises(bpcore.InputError, match="2 labels for a classifier with 3"):
        EfficientNet(TIMM_MODEL, pretrained=five, labels=["a", "b"])


def test_a_model_path_that_is_no_efficientnet_is_an_input_error(weights_file):
    with pytest.raises(bpcore.InputError, match="not an EfficientNet") as caught:
        EfficientNet(str(weights_file))
    assert "pretrained=" in str(caught.value)
    with pytest.raises(bpcore.InputError, match="not an EfficientNet"):
        EfficientNet("resnet50", pretrained=False)


def test_preprocessing_is_timms_data_config(tiny_effnet):
    config = tiny_effnet.data_config()
    assert config["input_size"] == (3, IMAGE_SIZE, IMAGE_SIZE)
    assert config["interpolation"] == "bicubic" and config["crop_pct"] == 0.875
    assert tuple(tiny_effnet.preprocess(IMAGES).shape) == (len(IMAGES), 3, IMAGE_SIZE, IMAGE_SIZE)
