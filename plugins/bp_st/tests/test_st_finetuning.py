"""Finetuning the real all-MiniLM-L6-v2 with both text-vectorisation variants."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import bpcore

# Paraphrases score 1; texts on a shared topic that say different things score 0.
TEXTS1 = [
    "I went to the store and bought some bread",
    "I am getting a cat soon",
    "The train to London was late",
    "He fixed the bike with a new chain",
    "They moved the meeting to Friday",
    "We are adopting a puppy next week",
]
TEXTS2 = [
    "I bought bread from the store",
    "I took my dog for a walk",
    "Our London train arrived late",
    "He rode his bike to the lake",
    "The meeting is now on Friday",
    "I fed my cat this morning",
]
SCORES = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
TRAIN, VAL = [0, 1, 2, 3], [4, 5]
PAIRS = {"texts1": TEXTS1, "texts2": TEXTS2, "similarity_scores": SCORES}

# Grouped by topic (food, weather), but each text reads like one of the other group.
GROUP_TEXTS = [
    "The soup was too cold to eat",
    "I burned the toast this morning",
    "She baked bread for the party",
    "The pasta needs more salt",
    "The wind was too cold to go out",
    "I burned my skin in the sun this morning",
    "It rained all through the party",
    "The storm brought more snow",
]
GROUPS = [0, 0, 0, 0, 1, 1, 1, 1]


def pair_loss(tv, indices):
    """The cosine-similarity loss of the pairs at ``indices``, as the finetuning computes it."""
    first = tv([TEXTS1[i] for i in indices], return_tensor=True)
    second = tv([TEXTS2[i] for i in indices], return_tensor=True)
    targets = torch.tensor([SCORES[i] for i in indices])
    return float(F.mse_loss(F.cosine_similarity(first, second).cpu(), targets))


def group_similarities(tv):
    """Mean cosine similarity of texts in the same group, and of texts in different groups."""
    vectors = F.normalize(tv(GROUP_TEXTS, return_tensor=True).cpu(), dim=1)
    similarity = vectors @ vectors.T
    groups = torch.tensor(GROUPS)
    same = groups[:, None] == groups[None, :]
    itself = torch.eye(len(GROUPS), dtype=torch.bool)
    return float(similarity[same & ~itself].mean()), float(similarity[~same].mean())


def test_cosine_similarity_finetuning_lowers_the_validation_loss(fresh_tv):
    before = pair_loss(fresh_tv, VAL)
    vectors_before = fresh_tv(TEXTS1, return_tensor=True).clone()

    # The default variant, with the model's own optimizer (AdamW, lr 1e-5).
    history = fresh_tv.finetune(
        PAIRS, validation_split=(TRAIN, VAL), epochs=4, early_stopping_epochs=0, seed=0
    )

    assert len(history.val_loss) == 4
    assert history.validated_on == "validation split"
    assert history.val_loss[-1] < history.val_loss[0]
    assert pair_loss(fresh_tv, VAL) < before
    assert not torch.allclose(fresh_tv(TEXTS1, return_tensor=True), vectors_before, atol=1e-4)


# Eight texts hold no validation split: the run validates on its training data, and warns so.
@pytest.mark.filterwarnings("ignore:the validation split")
def test_triplet_finetuning_brings_each_group_together(fresh_tv):
    within_before, across_before = group_similarities(fresh_tv)

    fresh_tv.finetune(
        {"texts": GROUP_TEXTS, "groups": GROUPS},
        variant="triplet",
        validation_split=0.0,
        epochs=4,
        early_stopping_epochs=0,
        seed=0,
        configure_optimizers=lambda: torch.optim.AdamW(fresh_tv.model.parameters(), lr=5e-5, fused=True),
    )

    within_after, across_after = group_similarities(fresh_tv)
    assert within_after > across_after
    assert within_after - across_after > (within_before - across_before) + 0.2


def test_the_max_length_option_truncates_the_training_texts(fresh_tv):
    long_text = " ".join(["word"] * 60)
    params = {"texts1": [long_text, "a cat"], "texts2": ["a dog", long_text], "similarity_scores": [0.0, 0.0]}
    lengths = []

    def step(batch, batch_idx):
        lengths.append(batch["inputs"]["input_ids"].shape[1])
        return fresh_tv.step_cosine(batch, batch_idx)

    fresh_tv.finetune(params, validation_split=([0], [1]), epochs=1, step=step, max_length=12, seed=0)
    assert lengths and max(lengths) == 12

    lengths.clear()
    fresh_tv.finetune(params, validation_split=([0], [1]), epochs=1, step=step, seed=0)
    assert max(lengths) > 12  # without the option, the model's own limit (256 tokens) applies


def test_a_max_length_beyond_the_model_limit_is_refused(fresh_tv):
    with pytest.raises(bpcore.InputError, match="256") as caught:
        fresh_tv.finetune(PAIRS, validation_split=(TRAIN, VAL), epochs=1, max_length=1000)
    assert caught.value.field == "max_length"
