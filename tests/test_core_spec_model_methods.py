"""Spec 6.11's ``BaseModel.finetune``: a model finetunes itself as its task's ``finetune`` would."""

from __future__ import annotations

import warnings

import pytest
import torch
from tiny_models import TinyTextModel

import bpcore

PARAMS = {
    "texts": [
        "This is a political news article",
        "The parliament voted on the law",
        "This is a computer science research paper",
        "The processor runs the program",
        "This is a movie review",
        "The film was a wonderful game",
    ],
    "labels": ["Politics", "Politics", "Science", "Science", "Entertainment", "Entertainment"],
}


def _fresh() -> TinyTextModel:
    torch.manual_seed(0)
    return TinyTextModel(name="tiny-text")


def test_finetune_on_the_model_is_the_tasks_finetune():
    by_model, by_task = _fresh(), _fresh()
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # a small data set: the task warns about its validation split either way
        history = by_model.finetune(PARAMS, task="text-classification", epochs=2, seed=0)
        bpcore.TextClassification(by_task).finetune(PARAMS, epochs=2, seed=0)
    assert len(history) == 2
    text = "The team won the match"
    assert bpcore.TextClassification(by_model)(text) == bpcore.TextClassification(by_task)(text)


def test_a_model_of_several_tasks_must_be_told_which():
    with pytest.raises(bpcore.InputError, match="name the one to finetune for"):
        _fresh().finetune(PARAMS)


def test_a_model_of_one_task_finetunes_for_it():
    model = TinyTextModel(name="tiny-text", tasks=["text-classification"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.finetune(PARAMS, epochs=1)
    assert model.labels == ["Entertainment", "Politics", "Science"] or set(model.labels) == set(
        PARAMS["labels"]
    )


def test_an_unknown_task_is_an_input_error():
    with pytest.raises(bpcore.InputError, match="unknown task 'telepathy'"):
        _fresh().finetune(PARAMS, task="telepathy")
