"""Spec 2.3.2: finetuning a task whose default cannot be finetuned starts from its finetunable default."""

from __future__ import annotations

import pytest

import bpcore
from bpcore.training.history import BpcoreWarning

TEXTS = [
    "the senate passed a law",
    "the vote in parliament",
    "a physics experiment",
    "the lab measured cells",
]
PARAMS = {"texts": TEXTS * 3, "labels": ["politics", "politics", "science", "science"] * 3}


class ZeroShotDefaultPlugin:
    """A task default that only answers (like an NLI zero-shot model) and a model to finetune."""

    @bpcore.hookimpl
    def register_models(self, register):
        register(
            name="answers-only",
            factory="tiny_models:TinyTextModel",
            tasks=["text-classification"],
            default_for=["text-classification"],
        )
        register(
            name="to-finetune",
            factory="tiny_models:TinyTextModel",
            tasks=["text-classification"],
            finetunable=["text-classification"],
            default_finetune_for=["text-classification"],
        )


@pytest.fixture
def zero_shot_default(seeded):
    name = bpcore.register_plugin(ZeroShotDefaultPlugin(), name="zero-shot-default")
    try:
        yield
    finally:
        bpcore.unregister_plugin(name)


def finetune(tc: bpcore.TextClassification) -> None:
    tc.finetune(
        PARAMS, validation_split=0.25, epochs=15, batch_size=4, early_stopping_epochs=0, progress=False
    )


def test_the_default_gives_way_with_a_notice_and_the_finetuned_model_learns(zero_shot_default):
    tc = bpcore.TextClassification()
    assert tc.model.name == "answers-only"
    with pytest.warns(
        BpcoreWarning, match="answers-only, the default for text-classification, cannot be finetuned"
    ):
        finetune(tc)
    assert tc.model.name == "to-finetune"
    answers = tc(TEXTS)
    assert [max(answer, key=answer.get) for answer in answers] == [
        "politics",
        "politics",
        "science",
        "science",
    ]


def test_a_model_the_user_chose_is_never_swapped(zero_shot_default, monkeypatch):
    with pytest.raises(bpcore.TaskNotSupportedError, match="finetunable models: .*to-finetune"):
        finetune(bpcore.TextClassification("answers-only"))
    monkeypatch.setenv("BPCORE_DEFAULTS", "text-classification=answers-only")
    with pytest.raises(bpcore.TaskNotSupportedError, match="answers-only cannot be finetuned"):
        finetune(bpcore.TextClassification())


def test_default_finetune_for_must_be_finetunable():
    from bpcore.plugins import ModelSpec

    with pytest.raises(bpcore.InputError, match="default_finetune_for"):
        ModelSpec(
            name="x-model",
            factory="tiny_models:TinyTextModel",
            tasks=["text-classification"],
            default_finetune_for=["text-classification"],
        )
