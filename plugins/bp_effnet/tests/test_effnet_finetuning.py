"""Finetuning on generated images: single- and multi-label learning, saving, labels, augmentation, errors.

Training splits are whole batches of 16 (see the README: a trailing batch of a few images
corrupts BatchNorm statistics).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from tiny_effnet import IMAGE_SIZE, TIMM_MODEL, multi_label_data, single_label_data

import bpcore
from bp_effnet import EfficientNet

HEAD_SEED = 0
SPLIT = (list(range(48)), list(range(48, 60)))  # 3 training batches of 16, 12 to validate on


def accuracy(answers, truths) -> float:
    return sum(max(answer, key=answer.get) == truth for answer, truth in zip(answers, truths)) / len(truths)


def exact_match(answers, truths) -> float:
    return sum(
        {label for label, p in answer.items() if p > 0.5} == set(truth)
        for answer, truth in zip(answers, truths)
    ) / len(truths)


def per_label_accuracy(answers, truths) -> float:
    right = [
        (p > 0.5) == (label in truth) for answer, truth in zip(answers, truths) for label, p in answer.items()
    ]
    return sum(right) / len(right)


def untrained(weights_file):
    return EfficientNet(TIMM_MODEL, pretrained=str(weights_file), image_size=IMAGE_SIZE)


@pytest.fixture(scope="module")
def single_label_run(weights_file):
    """A model finetuned once on red / green / blue images, with its held-out test set and history."""
    images, labels = single_label_data(20, seed=1)
    ic = bpcore.ImageClassification(untrained(weights_file))
    torch.manual_seed(HEAD_SEED)  # the fresh head is drawn before finetune's seed applies
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = ic.finetune(
            {"images": images, "labels": labels},
            epochs=6,
            batch_size=16,
            validation_split=SPLIT,
            seed=0,
            early_stopping_epochs=0,
        )
    return ic, history, single_label_data(8, seed=2)


def test_single_label_finetuning_learns_the_colours(single_label_run, weights_file):
    ic, history, (test_images, test_labels) = single_label_run
    assert history.val_loss[history.best_epoch - 1] < history.val_loss[0]
    answers = ic(test_images)
    assert set(answers[0]) == {"red", "green", "blue"}
    assert sum(answers[0].values()) == pytest.approx(1.0, rel=1e-4)
    trained = accuracy(answers, test_labels)
    assert trained >= 0.9
    # The untrained network, given the same fresh 3-label head, is no better than chance.
    before = untrained(weights_file)
    torch.manual_seed(0)
    before.pre_finetuning({0: "blue", 1: "green", 2: "red"}, 3)
    assert trained > accuracy(bpcore.ImageClassification(before)(test_images), test_labels)


def test_labels_are_still_an_error_after_finetuning(single_label_run):
    ic, _, (test_images, _) = single_label_run
    with pytest.raises(bpcore.InputError) as caught:
        ic(test_images[0], ["red", "green"])
    assert "the 3 it was finetuned on" in str(caught.value) and "clip" in str(caught.value)


def test_save_then_load_answers_identically(single_label_run, bpcore_home, tmp_path):
    ic, _, (test_images, _) = single_label_run
    folder = ic.save("my-colours")
    loaded = bpcore.load("my-colours")
    assert isinstance(loaded, EfficientNet) and loaded.labels == ["blue", "green", "red"]
    assert bpcore.ImageClassification(loaded)(test_images) == ic(test_images)
    by_path = bpcore.ImageClassification(str(folder))
    assert by_path(test_images[:2], top_k=1) == ic(test_images[:2], top_k=1)


def test_an_imagenet_model_saves_and_loads_too(tiny_effnet, tmp_path):
    from tiny_effnet import single_label_data as data

    image = data(1, seed=9)[0][0]
    folder = bpcore.save(tiny_effnet, path=tmp_path / "imagenet-tiny", name="imagenet-tiny")
    loaded = bpcore.load(folder)
    assert loaded.labels is None and loaded.image_size == IMAGE_SIZE
    torch.testing.assert_close(loaded.probabilities([image]), tiny_effnet.probabilities([image]))


def test_multi_label_finetuning_learns_independent_labels(weights_file, bpcore_home):
    images, labels = multi_label_data(15, seed=1)
    ic = bpcore.ImageClassification(untrained(weights_file))
    torch.manual_seed(HEAD_SEED)  # the fresh head is drawn before finetune's seed applies
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ic.finetune(
            {"images": images, "labels": labels},
            variant="multi_label",
            epochs=6,
            batch_size=16,
            validation_split=SPLIT,
            seed=1,
            early_stopping_epochs=0,
        )
    test_images, test_labels = multi_label_data(6, seed=2)
    answers = ic(test_images)
    assert set(answers[0]) == {"red", "striped"}
    assert any(abs(sum(answer.values()) - 1.0) > 0.2 for answer in answers)  # not a softmax
    # Each label right on >= 80% of the images (the untrained head: about half), both right on most.
    assert per_label_accuracy(answers, test_labels) >= 0.8
    assert exact_match(answers, test_labels) >= 0.6
    before = untrained(weights_file)
    before.pre_finetuning({0: "red", 1: "striped"}, 2, multi_label=True)
    assert per_label_accuracy(answers, test_labels) > per_label_accuracy(
        before.classify(test_images), test_labels
    )
    # multi-label survives save / load
    loaded = bpcore.load(ic.save("my-stripes"))
    assert loaded.multi_label and bpcore.ImageClassification(loaded)(test_images) == answers


def test_pre_finetuning_replaces_the_head_with_timms_reset_classifier(tiny_effnet):
    old_head = tiny_effnet.model.get_classifier()
    tiny_effnet.pre_finetuning(labels={0: "cat", 1: "dog"}, num_classes=2, multi_label=True)
    assert tiny_effnet.model.num_classes == 2 and tiny_effnet.model.get_classifier() is not old_head
    assert tiny_effnet.labels == ["cat", "dog"] and tiny_effnet.multi_label
    kept = tiny_effnet.model.get_classifier()
    tiny_effnet.pre_finetuning(labels={0: "cat", 1: "dog"}, num_classes=2, multi_label=True)
    assert tiny_effnet.model.get_classifier() is kept  # same labels: a second run continues the first


def test_augmentation_is_off_by_default_and_random_in_training_when_on(tiny_effnet):
    image = single_label_data(1, seed=3)[0][0]
    tiny_effnet.train()
    assert torch.equal(
        tiny_effnet.process_batch({"image": image}), tiny_effnet.process_batch({"image": image})
    )
    tiny_effnet.augment = True
    torch.manual_seed(0)
    first, second = (tiny_effnet.process_batch({"image": image}) for _ in range(2))
    assert first.shape == (3, IMAGE_SIZE, IMAGE_SIZE) and not torch.equal(first, second)
    tiny_effnet.eval()  # validation batches are never augmented
    assert torch.equal(
        tiny_effnet.process_batch({"image": image}), tiny_effnet.process_batch({"image": image})
    )
    assert EfficientNet(TIMM_MODEL, pretrained=False, augment=True, image_size=IMAGE_SIZE).augment


def test_bad_labels_are_input_errors(tiny_effnet):
    images, _ = single_label_data(1, seed=4)
    ic = bpcore.ImageClassification(tiny_effnet)
    with pytest.raises(bpcore.InputError, match="params.labels"):
        ic.finetune({"images": images, "labels": ["red", ""]})
    with pytest.raises(bpcore.InputError, match="params"):
        ic.finetune({"images": images, "labels": ["red"]})  # 3 images, 1 label
    with pytest.raises(bpcore.InputError, match="no image has any label"):
        ic.finetune({"images": images, "labels": [[], [], []]}, variant="multi_label")


def test_a_bad_image_in_finetuning_names_the_item(tiny_effnet):
    images, labels = single_label_data(1, seed=4)
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.ImageClassification(tiny_effnet).finetune(
            {"images": [images[0], "/no/such/cat.png", images[2]], "labels": labels}
        )
    assert "params.images[1]" in str(caught.value)
