"""Inference with a tiny random OpenCLIP model, through bpcore's four image and text tasks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from open_clip.zero_shot_classifier import build_zero_shot_classifier
from tiny_clip import TINY_NAME, TINY_VECTOR_SIZE, TinyClipPlugin, make_image, to_base64

import bp_clip.model
import bpcore

IMAGES = [make_image("red"), make_image("blue", "stripes", seed=1), make_image("green", "checks", seed=2)]
TEXTS = ["a red square", "blue stripes on a wall", "a green chessboard"]
LABELS = ["red", "blue", "green", "yellow"]


def test_image_vectors_are_normalised_and_a_batch_equals_single_calls(shared_clip):
    iv = bpcore.ImageVectorisation(shared_clip)
    vector = iv(IMAGES[0])
    assert len(vector) == TINY_VECTOR_SIZE and all(isinstance(value, float) for value in vector)
    batch = iv(IMAGES, return_tensor=True)
    assert isinstance(batch, torch.Tensor) and batch.shape == (3, TINY_VECTOR_SIZE)
    assert torch.allclose(batch.norm(dim=1), torch.ones(3), atol=1e-5)
    singles = torch.tensor([iv(image) for image in IMAGES])
    assert torch.allclose(batch, singles, atol=1e-5)
    assert torch.allclose(torch.tensor(iv(IMAGES)), batch, atol=1e-6)


def test_a_path_a_pil_image_and_base64_give_the_same_vector(shared_clip, tmp_path):
    path = tmp_path / "red.png"
    IMAGES[0].save(path)
    iv = bpcore.ImageVectorisation(shared_clip)
    from_pil, from_path, from_base64 = iv([IMAGES[0], str(path), to_base64(IMAGES[0])], return_tensor=True)
    assert torch.allclose(from_pil, from_path, atol=1e-6)
    assert torch.allclose(from_pil, from_base64, atol=1e-6)


def test_text_vectors_come_from_the_text_tower(shared_clip):
    tv = bpcore.TextVectorisation(shared_clip)
    batch = tv(TEXTS, return_tensor=True)
    assert batch.shape == (3, TINY_VECTOR_SIZE)
    assert torch.allclose(batch, torch.tensor([tv(text) for text in TEXTS]), atol=1e-5)
    tokens = shared_clip.tokenizer(TEXTS)
    with torch.no_grad():
        expected = shared_clip.model.encode_text(tokens, normalize=True)
    assert torch.allclose(batch, expected, atol=1e-5)
    assert not torch.allclose(batch[0], batch[1], atol=1e-3)


def test_image_text_vectors_are_the_normalised_sum_of_both(shared_clip):
    itv = bpcore.ImageTextVectorisation(shared_clip)
    batch = itv(IMAGES, TEXTS, return_tensor=True)
    assert batch.shape == (3, TINY_VECTOR_SIZE)
    single = itv(IMAGES[1], TEXTS[1])
    assert torch.allclose(batch[1], torch.tensor(single), atol=1e-5)
    images = bpcore.ImageVectorisation(shared_clip)(IMAGES, return_tensor=True)
    texts = bpcore.TextVectorisation(shared_clip)(TEXTS, return_tensor=True)
    assert torch.allclose(batch, F.normalize(images + texts, dim=-1), atol=1e-5)


def test_zero_shot_probabilities_sum_to_one_and_match_open_clip(shared_clip):
    ic = bpcore.ImageClassification(shared_clip)
    answers = ic(IMAGES, LABELS)
    assert len(answers) == 3
    for answer in answers:
        assert set(answer) == set(LABELS)
        assert sum(answer.values()) == pytest.approx(1.0, abs=1e-5)
        assert list(answer.values()) == sorted(answer.values(), reverse=True)
    # The same probabilities as open_clip's own zero-shot recipe.
    model = shared_clip.model
    with torch.no_grad():
        classifier = build_zero_shot_classifier(model, shared_clip.tokenizer, LABELS, ["a photo of a {}."])
        pixels = torch.stack([shared_clip.preprocess(image) for image in IMAGES])
        expected = (
            model.logit_scale.exp() * model.encode_image(pixels, normalize=True) @ classifier
        ).softmax(-1)
    for answer, row in zip(answers, expected):
        assert [answer[label] for label in LABELS] == pytest.approx(row.tolist(), abs=1e-5)


def test_top_k_per_image_label_lists_and_single_calls(shared_clip):
    ic = bpcore.ImageClassification(shared_clip)
    top = ic(IMAGES[0], LABELS, top_k=2)
    assert len(top) == 2 and set(top) <= set(LABELS)
    assert top == dict(list(ic(IMAGES[0], LABELS).items())[:2])
    per_image = [["red", "blue"], ["cat", "dog", "bird"], ["red", "blue"]]
    answers = ic(IMAGES, per_image)
    assert [set(answer) for answer in answers] == [set(labels) for labels in per_image]
    for image, labels, answer in zip(IMAGES, per_image, answers):
        assert ic(image, labels) == pytest.approx(answer, abs=1e-5)


def test_label_embeddings_are_computed_once_per_label_list(shared_clip, monkeypatch):
    calls = []
    real = bp_clip.model.label_embeddings

    def counting(model, tokenizer, labels, template, device):
        calls.append(tuple(labels))
        return real(model, tokenizer, labels, template, device)

    monkeypatch.setattr(bp_clip.model, "label_embeddings", counting)
    shared_clip._label_cache.clear()
    ic = bpcore.ImageClassification(shared_clip)
    first = ic(IMAGES, LABELS)
    second = ic(IMAGES, LABELS)
    ic(IMAGES, [LABELS, ["cat", "dog"], LABELS])
    assert calls == [tuple(LABELS), ("cat", "dog")]
    assert first == second


def test_without_labels_an_untrained_model_asks_for_them(shared_clip):
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.ImageClassification(shared_clip)(IMAGES[0])
    assert caught.value.field == "input.labels"


def test_a_bad_image_is_an_input_error_naming_the_item(shared_clip, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.ImageVectorisation(shared_clip)([IMAGES[0], str(broken)])
    assert caught.value.field == "input.image[1]"


def test_a_registered_name_loads_the_tiny_model(tiny_files, shared_clip):
    plugin = TinyClipPlugin(*tiny_files)
    bpcore.register_plugin(plugin, name="tiny-clip-test-plugin")
    try:
        iv = bpcore.ImageVectorisation(TINY_NAME)
        assert iv.model.name == TINY_NAME
        assert isinstance(iv.model, bp_clip.model.CLIP)
        assert torch.allclose(
            iv(IMAGES, return_tensor=True),
            bpcore.ImageVectorisation(shared_clip)(IMAGES, return_tensor=True),
            atol=1e-6,
        )
        answer = bpcore.ImageClassification(TINY_NAME)(IMAGES[0], LABELS)
        assert sum(answer.values()) == pytest.approx(1.0, abs=1e-5)
    finally:
        bpcore.unregister_plugin(plugin)
