"""The losses and the group sampler of spec chapter 8, and triplet finetuning with them."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
import torch.nn.functional as F

import bpcore
from bpcore.training import BpcoreWarning
from bpcore.training.losses import TripletSemiHardLoss, cosine_similarity_loss
from bpcore.training.samplers import GroupBatchSampler

# -- triplet loss -------------------------------------------------------------------------------


def test_triplet_loss_is_zero_for_well_separated_groups():
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.02], [-1.0, 0.0], [-1.0, 0.02], [0.0, 1.0], [0.02, 1.0]])
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    assert TripletSemiHardLoss()(embeddings, groups).item() == pytest.approx(0.0, abs=1e-6)


def test_triplet_loss_is_positive_for_mixed_groups():
    embeddings = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.95, 0.05], [-0.95, 0.05]])
    groups = torch.tensor([0, 0, 1, 1])
    assert TripletSemiHardLoss()(embeddings, groups).item() > 0.1


def test_triplet_loss_is_positive_for_groups_inside_the_margin():
    # Negatives farther than the positives but within the margin: the semi-hard case.
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.1], [1.0, 0.6], [1.0, 0.7]])
    groups = torch.tensor([0, 0, 1, 1])
    assert TripletSemiHardLoss(margin=1.0)(embeddings, groups).item() > 0.1


def within_and_across(vectors: torch.Tensor, groups: list[int]) -> tuple[float, float]:
    similarity = F.cosine_similarity(vectors[:, None], vectors[None], dim=-1)
    within, across = [], []
    for i, j in itertools.combinations(range(len(groups)), 2):
        (within if groups[i] == groups[j] else across).append(float(similarity[i, j]))
    return sum(within) / len(within), sum(across) / len(across)


def test_gradient_descent_on_triplet_loss_pulls_groups_together():
    torch.manual_seed(0)
    groups = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]
    embeddings = torch.nn.Parameter(torch.randn(len(groups), 8))
    loss_fn = TripletSemiHardLoss()
    optimizer = torch.optim.SGD([embeddings], lr=0.5)
    within_before, across_before = within_and_across(embeddings.detach(), groups)
    first_loss = None
    for _ in range(100):
        loss = loss_fn(embeddings, torch.tensor(groups))
        first_loss = first_loss if first_loss is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    within_after, across_after = within_and_across(embeddings.detach(), groups)
    assert loss_fn(embeddings, torch.tensor(groups)).item() < first_loss
    assert within_after - across_after > within_before - across_before + 0.5
    assert within_after > across_after


# -- cosine similarity loss ---------------------------------------------------------------------


def test_cosine_similarity_loss_is_mse_of_cosine_against_target():
    torch.manual_seed(1)
    first, second = torch.randn(5, 7), torch.randn(5, 7)
    targets = torch.tensor([1.0, 0.0, -0.5, 0.3, 0.9])
    cosine = (first * second).sum(dim=1) / (first.norm(dim=1) * second.norm(dim=1))
    expected = ((cosine - targets) ** 2).mean()
    assert cosine_similarity_loss(first, second, targets).item() == pytest.approx(expected.item(), rel=1e-5)
    assert cosine_similarity_loss(first, first, torch.ones(5)).item() == pytest.approx(0.0, abs=1e-6)
    # Integer and double targets work the same.
    assert cosine_similarity_loss(first, first, torch.ones(5, dtype=torch.int64)).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_cosine_similarity_loss_gradient_moves_pairs_towards_targets():
    torch.manual_seed(2)
    first = torch.nn.Parameter(torch.randn(4, 6))
    second = torch.randn(4, 6)
    targets = torch.tensor([1.0, -1.0, 0.0, 0.5])
    optimizer = torch.optim.SGD([first], lr=1.0)
    start = cosine_similarity_loss(first, second, targets).item()
    for _ in range(200):
        loss = cosine_similarity_loss(first, second, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert cosine_similarity_loss(first, second, targets).item() < start / 10


# -- group sampler ------------------------------------------------------------------------------


def sampler_cases() -> list[tuple[list[int], int]]:
    rng = random.Random(0)
    cases = [
        ([0, 0, 1], 2),
        ([0, 0, 1], 3),
        ([0, 0, 0], 2),
        ([0, 1, 2, 3, 0], 3),
        ([0, 0, 1, 1, 2, 2, 3, 3] * 3, 5),
    ]
    for _ in range(60):
        count = rng.randint(2, 30)
        top = rng.randint(1, 8)
        cases.append(([rng.randint(0, top) for _ in range(count)], rng.randint(2, 9)))
    return cases


@pytest.mark.parametrize("seed", [0, 1])
def test_group_sampler_properties(seed):
    for groups, batch_size in sampler_cases():
        sampler = GroupBatchSampler(groups, batch_size=batch_size, seed=seed)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            batches = list(sampler)
            where = (groups, batch_size, epoch, batches)
            # Every index exactly once an epoch.
            assert sorted(index for batch in batches for index in batch) == list(range(len(groups))), where
            for batch in batches:
                # Batch sizes are respected; only an odd group cut into pairs and a triple may exceed a batch of 2.
                assert len(batch) <= max(batch_size, 3), where
                for index in batch:
                    group = groups[index]
                    if groups.count(group) >= 2:
                        assert sum(groups[other] == group for other in batch) >= 2, where


@pytest.mark.parametrize("seed", [0, 1])
def test_group_sampler_length_matches_the_batches(seed):
    for groups, batch_size in sampler_cases():
        sampler = GroupBatchSampler(groups, batch_size=batch_size, seed=seed)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            expected = len(sampler)
            assert len(list(sampler)) == expected, (groups, batch_size, epoch)


def test_group_sampler_is_deterministic_per_seed_and_varies_across_epochs():
    groups = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]

    def epochs(seed: int) -> list[list[list[int]]]:
        sampler = GroupBatchSampler(groups, batch_size=4, seed=seed)
        result = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            result.append(list(sampler))
        return result

    assert epochs(5) == epochs(5)
    assert epochs(5) != epochs(6)
    first, second, third = epochs(5)
    assert first != second and second != third


def test_group_sampler_rejects_a_batch_without_room_for_a_pair():
    with pytest.raises(ValueError):
        GroupBatchSampler([0, 0, 1], batch_size=1)


# -- triplet finetuning -------------------------------------------------------------------------

GROUPED_TEXTS = {
    "texts": [
        "fresh bread from the bakery",
        "I bought a loaf of bread",
        "the baker sells sourdough bread",
        "warm bread rolls for breakfast",
        "walking my dog in the park",
        "the puppy chased a ball",
        "my dog loves long walks",
        "feeding the puppy every morning",
        "the car needs new tyres",
        "driving the car to work",
        "a new engine for my car",
        "parking the car downtown",
    ],
    "groups": [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
}


# These texts share few trigrams across a group, so the tiny model learns them without
# generalising to held-out ones (early stopping would rightly keep epoch 1): validate on them.
@pytest.mark.filterwarnings("ignore:the validation split")
def test_triplet_finetuning_pulls_same_group_texts_together(tiny_plugin, seeded):
    tv = bpcore.TextVectorisation("tiny-text")
    groups = GROUPED_TEXTS["groups"]
    within_before, across_before = within_and_across(torch.tensor(tv(GROUPED_TEXTS["texts"])), groups)
    history = tv.finetune(
        GROUPED_TEXTS, variant="triplet", validation_split=0.0, epochs=15, early_stopping_epochs=3, seed=0
    )
    assert history.validated_on == "training data"
    within_after, across_after = within_and_across(torch.tensor(tv(GROUPED_TEXTS["texts"])), groups)
    assert min(history.train_loss) < history.train_loss[0]
    assert within_after - across_after > within_before - across_before + 0.2
    assert within_after > across_after


def test_triplet_finetuning_batches_keep_a_positive_beside_each_anchor(tiny_plugin, seeded):
    tv = bpcore.TextVectorisation("tiny-text")
    batches: list[list[int]] = []

    def step(batch, batch_idx):
        batches.append(batch["targets"].tolist())
        return tv.step_triplet(batch, batch_idx)

    with pytest.warns(BpcoreWarning):
        tv.finetune(
            GROUPED_TEXTS,
            variant="triplet",
            validation_split=0.0,
            batch_size=4,
            epochs=2,
            early_stopping_epochs=0,
            step=step,
            seed=0,
        )
    assert batches
    for targets in batches:
        assert len(targets) <= 4
        assert all(targets.count(group) >= 2 for group in targets), targets


def test_triplet_validation_batches_are_the_same_every_epoch(tiny_plugin, seeded):
    # Early stopping compares validation losses across epochs; with in-batch mining they are
    # only comparable when each epoch validates on the same batches.
    tv = bpcore.TextVectorisation("tiny-text")
    seen: list[list[list[float]]] = []

    def step(batch, batch_idx):
        if not tv.model.training:
            if batch_idx == 0:
                seen.append([])
            seen[-1].append(
                sorted(tv.model.training_step(batch["inputs"], task="text-vectorisation")[:, 0].tolist())
            )
        return tv.step_triplet(batch, batch_idx)

    params = {"texts": GROUPED_TEXTS["texts"] * 2, "groups": GROUPED_TEXTS["groups"] * 2}
    tv.finetune(
        params,
        variant="triplet",
        validation_split=0.5,
        batch_size=4,
        epochs=3,
        early_stopping_epochs=0,
        step=step,
        seed=0,
        configure_optimizers=lambda: torch.optim.SGD(tv.model.parameters(), lr=0.0),
    )
    assert len(seen) == 3
    assert seen[0] == seen[1] == seen[2]


def test_triplet_validation_without_a_pair_falls_back_to_training_data(tiny_plugin, seeded):
    tv = bpcore.TextVectorisation("tiny-text")
    held_out = [0, 4, 8]  # one text of each group: no anchor has a positive
    train = [i for i in range(12) if i not in held_out]
    with pytest.warns(BpcoreWarning, match="training data"):
        history = tv.finetune(
            GROUPED_TEXTS, variant="triplet", validation_split=(train, held_out), epochs=1, seed=0
        )
    assert history.validated_on == "training data"
