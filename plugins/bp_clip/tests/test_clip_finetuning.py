"""Finetuning a tiny random OpenCLIP model: every task and variant learns, not just runs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_clip import make_image

import bpcore

# The tiny models start from random weights: every run validates on its training data (warned
# about) and uses a high learning rate, so a few epochs show learning.
pytestmark = pytest.mark.filterwarnings("ignore:the validation split")
EPOCHS = 6

# Three groups of clearly different images: colour and pattern per group, noise per image.
GROUP_STYLES = [("red", "solid"), ("blue", "stripes"), ("green", "checks")]
GROUP_IMAGES = [
    make_image(colour, pattern, seed=seed) for colour, pattern in GROUP_STYLES for seed in range(4)
]
GROUPS = [group for group in range(3) for _ in range(4)]
GROUP_TEXTS = [
    text
    for words in (
        ["apple", "cherry", "tomato", "strawberry"],
        ["sea", "sky", "river", "lake"],
        ["tree", "leaf", "grass", "moss"],
    )
    for text in words
]

# Pairs: same-colour pairs should score 1, different colours 0.
PAIR_STYLES = [
    ("red", "red"),
    ("red", "blue"),
    ("blue", "blue"),
    ("green", "red"),
    ("green", "green"),
    ("blue", "green"),
]
IMGS1 = [make_image(a, seed=10 + i) for i, (a, _) in enumerate(PAIR_STYLES)]
IMGS2 = [make_image(b, "stripes", seed=20 + i) for i, (_, b) in enumerate(PAIR_STYLES)]
SCORES = [1.0 if a == b else 0.0 for a, b in PAIR_STYLES]
TEXTS1 = ["a ripe apple", "a ripe apple", "the deep sea", "green moss", "green moss", "the deep sea"]
TEXTS2 = ["red cherry", "blue sky", "the blue sky", "red tomato", "a tall tree", "fresh grass"]


def fast_optimizer(model, lr: float = 3e-3):
    return lambda: torch.optim.AdamW(model.parameters(), lr=lr)


def finetune(task, params, model, lr: float = 3e-3, **kwargs):
    options = {"validation_split": 0.0, "epochs": EPOCHS, "early_stopping_epochs": 0, "seed": 0}
    return task.finetune(params, configure_optimizers=fast_optimizer(model, lr), **{**options, **kwargs})


def group_gap(vectors: torch.Tensor) -> float:
    """Mean cosine similarity within groups minus across groups."""
    vectors = F.normalize(vectors.cpu(), dim=1)
    similarity = vectors @ vectors.T
    groups = torch.tensor(GROUPS)
    same = groups[:, None] == groups[None, :]
    itself = torch.eye(len(GROUPS), dtype=torch.bool)
    return float(similarity[same & ~itself].mean() - similarity[~same].mean())


def pair_error(first: torch.Tensor, second: torch.Tensor) -> float:
    return float(F.mse_loss(F.cosine_similarity(first, second).cpu(), torch.tensor(SCORES)))


def test_triplet_image_finetuning_pulls_each_group_together(fresh_clip, tmp_path):
    iv = bpcore.ImageVectorisation(fresh_clip)
    before = group_gap(iv(GROUP_IMAGES, return_tensor=True))
    # Paths, as a user passes them: the core decodes them before process_batch.
    paths = []
    for index, image in enumerate(GROUP_IMAGES):
        image.save(tmp_path / f"{index}.png")
        paths.append(str(tmp_path / f"{index}.png"))

    history = finetune(iv, {"images": paths, "groups": GROUPS}, fresh_clip)  # triplet is the default

    assert history.train_loss[-1] < history.train_loss[0]
    after = group_gap(iv(GROUP_IMAGES, return_tensor=True))
    assert after > before + 0.2


def test_cosine_image_finetuning_moves_similarities_to_their_targets(fresh_clip):
    iv = bpcore.ImageVectorisation(fresh_clip)
    before = pair_error(iv(IMGS1, return_tensor=True), iv(IMGS2, return_tensor=True))

    finetune(
        iv,
        {"imgs1": IMGS1, "imgs2": IMGS2, "similarity_scores": SCORES},
        fresh_clip,
        variant="cosine_similarity",
    )

    after = pair_error(iv(IMGS1, return_tensor=True), iv(IMGS2, return_tensor=True))
    assert after < before / 2


def test_triplet_image_text_finetuning_pulls_each_group_together(fresh_clip):
    itv = bpcore.ImageTextVectorisation(fresh_clip)
    before = group_gap(itv(GROUP_IMAGES, GROUP_TEXTS, return_tensor=True))

    finetune(itv, {"images": GROUP_IMAGES, "texts": GROUP_TEXTS, "groups": GROUPS}, fresh_clip)

    assert group_gap(itv(GROUP_IMAGES, GROUP_TEXTS, return_tensor=True)) > before + 0.2


def test_cosine_image_text_finetuning_moves_similarities_to_their_targets(fresh_clip):
    itv = bpcore.ImageTextVectorisation(fresh_clip)
    before = pair_error(itv(IMGS1, TEXTS1, return_tensor=True), itv(IMGS2, TEXTS2, return_tensor=True))
    params = {"imgs1": IMGS1, "imgs2": IMGS2, "texts1": TEXTS1, "texts2": TEXTS2, "similarity_scores": SCORES}

    finetune(itv, params, fresh_clip, variant="cosine_similarity")

    after = pair_error(itv(IMGS1, TEXTS1, return_tensor=True), itv(IMGS2, TEXTS2, return_tensor=True))
    assert after < before / 2


def test_triplet_text_finetuning_trains_the_text_tower(fresh_clip):
    tv = bpcore.TextVectorisation(fresh_clip)
    before = group_gap(tv(GROUP_TEXTS, return_tensor=True))
    image_vector = bpcore.ImageVectorisation(fresh_clip)(GROUP_IMAGES[0], return_tensor=True)

    finetune(tv, {"texts": GROUP_TEXTS, "groups": GROUPS}, fresh_clip, variant="triplet")

    assert group_gap(tv(GROUP_TEXTS, return_tensor=True)) > before + 0.2
    # Only the text tower learned: image vectors stay as they were.
    assert torch.allclose(
        bpcore.ImageVectorisation(fresh_clip)(GROUP_IMAGES[0], return_tensor=True), image_vector
    )


def test_cosine_text_finetuning_moves_similarities_to_their_targets(fresh_clip):
    tv = bpcore.TextVectorisation(fresh_clip)
    before = pair_error(tv(TEXTS1, return_tensor=True), tv(TEXTS2, return_tensor=True))

    finetune(tv, {"texts1": TEXTS1, "texts2": TEXTS2, "similarity_scores": SCORES}, fresh_clip)  # the default

    assert pair_error(tv(TEXTS1, return_tensor=True), tv(TEXTS2, return_tensor=True)) < before / 2


def test_text_finetuning_refuses_a_max_length_beyond_the_context(fresh_clip):
    tv = bpcore.TextVectorisation(fresh_clip)
    with pytest.raises(bpcore.InputError, match="16") as caught:
        tv.finetune(
            {"texts1": TEXTS1, "texts2": TEXTS2, "similarity_scores": SCORES}, epochs=1, max_length=100
        )
    assert caught.value.field == "max_length"


COLOURS = ["red", "blue", "green", "yellow"]
CLASS_IMAGES = [make_image(colour, "solid", seed=seed) for colour in COLOURS for seed in range(3)]
CLASS_LABELS = [colour for colour in COLOURS for _ in range(3)]


def accuracy(answers: list[dict[str, float]], labels: list[str]) -> float:
    return sum(max(answer, key=answer.get) == label for answer, label in zip(answers, labels)) / len(labels)


def test_single_label_classification_learns_beyond_zero_shot(fresh_clip):
    ic = bpcore.ImageClassification(fresh_clip)
    zero_shot = accuracy(ic(CLASS_IMAGES, COLOURS), CLASS_LABELS)

    finetune(ic, {"images": CLASS_IMAGES, "labels": CLASS_LABELS}, fresh_clip, variant="single_label")

    answers = ic(CLASS_IMAGES)  # no labels: the learned ones
    assert all(set(answer) == set(COLOURS) for answer in answers)
    assert all(sum(answer.values()) == pytest.approx(1.0, abs=1e-5) for answer in answers)
    learned = accuracy(answers, CLASS_LABELS)
    assert learned > zero_shot and learned >= 0.9
    # Labels passed: zero-shot over them, as before finetuning.
    zero_shot_answer = ic(CLASS_IMAGES[0], ["cat", "dog"])
    assert set(zero_shot_answer) == {"cat", "dog"}
    assert sum(zero_shot_answer.values()) == pytest.approx(1.0, abs=1e-5)


def test_the_head_starts_as_the_zero_shot_classifier(fresh_clip):
    ic = bpcore.ImageClassification(fresh_clip)
    zero_shot = ic(CLASS_IMAGES, COLOURS)
    fresh_clip.pre_finetuning(labels=dict(enumerate(COLOURS)), num_classes=len(COLOURS))
    fresh_clip.eval()
    from_head = ic(CLASS_IMAGES)
    for expected, answer in zip(zero_shot, from_head):
        assert answer == pytest.approx(expected, abs=1e-4)


MULTI_IMAGES = [
    make_image(colour, pattern, seed=seed)
    for colour in ("red", "blue")
    for pattern in ("solid", "stripes")
    for seed in range(3)
]
MULTI_LABELS = [
    [colour] + (["striped"] if pattern == "stripes" else [])
    for colour in ("red", "blue")
    for pattern in ("solid", "stripes")
    for _ in range(3)
]


def test_multi_label_classification_learns_independent_labels(fresh_clip):
    ic = bpcore.ImageClassification(fresh_clip)
    params = {"images": MULTI_IMAGES, "labels": MULTI_LABELS}

    history = finetune(ic, params, fresh_clip, variant="multi_label", epochs=10, batch_size=4, lr=5e-3)

    assert fresh_clip.multi_label and sorted(fresh_clip.labels) == ["blue", "red", "striped"]
    assert history.train_loss[-1] < 0.7 * history.train_loss[0]
    answers = ic(MULTI_IMAGES)
    for answer, truth in zip(answers, MULTI_LABELS):
        # Every label an image has now ranks above every label it lacks.
        assert min(answer[label] for label in truth) > max(
            p for label, p in answer.items() if label not in truth
        )
    # Independent probabilities, not a distribution: they need not sum to 1.
    assert any(abs(sum(answer.values()) - 1.0) > 0.1 for answer in answers)
