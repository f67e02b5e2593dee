"""The spec's datasets (8.2) in train_dataloader/val_dataloader: finetuning as with params, no custom step."""

from __future__ import annotations

import pytest
import torch
from core_helpers import same_state, state_of
from tiny_models import TinyTextModel, TinyTextToTextModel
from torch.utils.data import DataLoader

import bpcore
from bpcore.utils.datasets import (
    SingleLabelTextClassificationDataset,
    TextGroupDataset,
    TextPairDataset,
    TextToTextDataset,
)

TEXTS1 = [f"product number {i} in red" for i in range(12)]
TEXTS2 = [f"the red product {i}" if i % 2 else f"an unrelated thing {i}" for i in range(12)]
SCORES = [0.9 if i % 2 else 0.0 for i in range(12)]
RUN = {"epochs": 3, "early_stopping_epochs": 0, "seed": 4, "progress": False}


def pair_loaders(model: TinyTextModel) -> tuple[DataLoader, DataLoader]:
    train = TextPairDataset(TEXTS1[:9], TEXTS2[:9], SCORES[:9], model.process_batch, max_length=12)
    val = TextPairDataset(TEXTS1[9:], TEXTS2[9:], SCORES[9:], model.process_batch, max_length=12)
    return DataLoader(train, batch_size=3), DataLoader(val, batch_size=3)


def test_dataset_loaders_train_exactly_as_the_same_params(seeded):
    torch.manual_seed(0)
    from_loaders = TinyTextModel()
    same_start = state_of(from_loaders)
    train, val = pair_loaders(from_loaders)
    history = bpcore.TextVectorisation(from_loaders).finetune(
        None, train_dataloader=train, val_dataloader=val, **RUN
    )

    from_params = TinyTextModel()
    from_params.load_state_dict(same_start)
    params = {"texts1": TEXTS1, "texts2": TEXTS2, "similarity_scores": SCORES}
    expected = bpcore.TextVectorisation(from_params).finetune(
        params, validation_split=(list(range(9)), list(range(9, 12))), batch_size=3, max_length=12, **RUN
    )
    assert history.val_loss == expected.val_loss and history.train_loss == expected.train_loss
    assert same_state(state_of(from_loaders), state_of(from_params))
    assert history.val_loss[-1] < history.val_loss[0]


def test_the_dataset_picks_the_variant_and_its_items_are_the_model_inputs(seeded):
    model = TinyTextModel()
    groups = TextGroupDataset(TEXTS1, [i % 3 for i in range(12)], model.process_batch)
    views, target = groups[4]
    assert target == 1 and views == (
        model.process_batch({"text": TEXTS1[4], "max_length": None}, task="text-vectorisation"),
    )
    history = bpcore.TextVectorisation(model).finetune(
        params=None, train_dataloader=DataLoader(groups, batch_size=6), validation_split=0.25, **RUN
    )
    assert len(history.val_loss) == 3  # trained with the triplet loss: the cosine variant would need pairs


def test_a_classification_dataset_learns_its_labels(seeded):
    texts = [
        "the senate passed a law",
        "the vote in parliament",
        "a physics experiment",
        "the lab measured cells",
    ]
    labels = ["politics", "politics", "science", "science"]
    model = TinyTextModel()
    dataset = SingleLabelTextClassificationDataset(
        {"texts": texts * 3, "labels": labels * 3}, model.process_batch, 32
    )
    tc = bpcore.TextClassification(model)
    tc.finetune(None, train_dataloader=DataLoader(dataset, batch_size=4), **{**RUN, "epochs": 15})
    answers = tc(texts)
    assert [max(answer, key=answer.get) for answer in answers] == labels


def test_text_to_text_dataset_finetunes_qa(seeded):
    model = TinyTextToTextModel()
    params = {
        "questions": ["Who?"] * 6,
        "answers": ["Sally"] * 6,
        "contexts": [f"Sally {i}" for i in range(6)],
    }
    dataset = TextToTextDataset(params, "qa", model.process_batch, 64)
    qa = bpcore.QA(model)
    qa.finetune(
        None,
        train_dataloader=DataLoader(dataset, batch_size=3),
        validation_split=0.5,
        **{**RUN, "epochs": 30},
    )
    assert qa("Who?", "Sally 1") == "Sally"


def test_loaders_and_params_errors_name_the_field(seeded):
    model = TinyTextModel()
    tv = bpcore.TextVectorisation(model)
    with pytest.raises(bpcore.InputError, match="params: is missing"):
        tv.finetune(None)
    own_batches = DataLoader(TEXTS1, batch_size=4)
    params = {"texts1": TEXTS1, "texts2": TEXTS2, "similarity_scores": SCORES}
    with pytest.raises(bpcore.InputError, match="train_dataloader: holds batches of your own"):
        tv.finetune(params, train_dataloader=own_batches)
    train, val = pair_loaders(model)
    with pytest.raises(bpcore.InputError, match="params: give params or a train_dataloader"):
        tv.finetune(params, train_dataloader=train)
    classification = SingleLabelTextClassificationDataset(
        {"texts": ["a"], "labels": ["x"]}, model.process_batch
    )
    with pytest.raises(
        bpcore.InputError, match="train_dataloader: holds a SingleLabelTextClassificationDataset"
    ):
        tv.finetune(None, train_dataloader=DataLoader(classification))
    with pytest.raises(bpcore.InputError, match="task"):
        TextToTextDataset({}, "image-classification", model.process_batch)
