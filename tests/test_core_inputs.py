"""Issue #19, part 3: each bad input named in the report gets a bpcore error naming the field."""

from __future__ import annotations

import base64
import math

import pytest
import torch
from core_helpers import same_state, state_of
from PIL import Image

import bpcore
from bpcore.testing.fuzz import png_header


@pytest.fixture
def tv(tiny_plugin, seeded):
    return bpcore.TextVectorisation("tiny-text")


@pytest.fixture
def tc(tiny_plugin, seeded):
    return bpcore.TextClassification("tiny-text")


pytestmark = pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")

PAIRS = {"texts1": ["a cat", "a dog"], "texts2": ["the cat", "a car"], "similarity_scores": [1.0, 0.0]}
GROUPS = {"texts": ["a", "b", "c", "d"], "groups": [0, 0, 1, 1]}


def raises_naming(field: str, call, error=bpcore.InputError) -> bpcore.BpcoreError:
    with pytest.raises(error) as caught:
        call()
    assert field in str(caught.value), str(caught.value)
    return caught.value


def test_lone_surrogates_are_input_errors(tv, tc):
    raises_naming("input.text", lambda: tv("\ud800"))
    raises_naming("input.text[1]", lambda: tv(["fine", "bad \udcff"]))
    raises_naming("input.labels[0][1]", lambda: tc("text", ["a", "\ud800"]))
    before = state_of(tv.model)
    raises_naming(
        "params.texts2[1]",
        lambda: tv.finetune({**PAIRS, "texts2": ["the cat", "\ud800"]}, epochs=1),
    )
    assert same_state(before, state_of(tv.model))


def test_none_and_non_lists_are_input_type_errors(tc, tv):
    raises_naming("input.text", lambda: tc(None, labels=["a", "b"]), bpcore.InputTypeError)
    raises_naming("input.text", lambda: tv(42), bpcore.InputTypeError)
    raises_naming("input.text", lambda: tv({"a"}), bpcore.InputTypeError)


@pytest.mark.parametrize("value", ["no", 1, None, "true"], ids=["string", "int", "none", "string-true"])
def test_return_tensor_must_be_a_bool(tv, value):
    raises_naming("return_tensor", lambda: tv("hello", return_tensor=value), bpcore.InputTypeError)


def test_images(tiny_plugin, tmp_path):
    iv = bpcore.ImageVectorisation("tiny-image")
    raises_naming("input.image", lambda: iv("data:image/png;base64"))
    raises_naming("input.image", lambda: iv("data:image/png;base64,"))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20000, 20000))
    raises_naming("input.image", lambda: iv(str(bomb)))
    raises_naming("input.image", lambda: iv(base64.b64encode(png_header(20000, 20000)).decode()))
    raises_naming("input.image", lambda: iv(base64.b64encode(png_header(10000, 10000)).decode()))
    closed = Image.new("RGB", (4, 4))
    closed.close()
    raises_naming("input.image", lambda: iv(closed))
    raises_naming("input.image", lambda: iv(Image.new("RGB", (0, 0))))
    raises_naming(
        "params.images[1]",
        lambda: iv.finetune({"images": [Image.new("RGB", (4, 4)), closed] * 2, "groups": [0, 0, 1, 1]}),
    )


@pytest.mark.parametrize(
    "device", ["bogus", "cuda:99", "", 1.5, True], ids=["bogus", "cuda", "empty", "float", "bool"]
)
def test_bad_devices(tiny_plugin, device):
    if device == "cuda:99" and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    raises_naming("device", lambda: bpcore.TextVectorisation("tiny-text", device=device))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda(tiny_plugin):
    error = raises_naming("device", lambda: bpcore.TextVectorisation("tiny-text", device="cuda"))
    assert "not available" in str(error)


@pytest.mark.parametrize(
    ("keywords", "field"),
    [
        ({"variant": ["x"]}, "variant"),
        ({"variant": ""}, "variant"),
        ({"validation_split": ([0.7], [1.9])}, "validation_split.train_indices"),
        ({"validation_split": ([0], [1.9])}, "validation_split.val_indices"),
        ({"validation_split": (0.5, 0.5)}, "validation_split.train_indices"),
        ({"validation_split": ([0], [1], [2])}, "validation_split"),
        ({"validation_split": "0.2"}, "validation_split"),
        ({"validation_split": math.nan}, "validation_split"),
        ({"validation_split": ([], [0])}, "validation_split.train_indices"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": "3"}, "epochs"),
        ({"optimal_batch_size": "x"}, "optimal_batch_size"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"early_stopping_epochs": -1}, "early_stopping_epochs"),
        ({"seed": "x"}, "seed"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**40}, "seed"),
        ({"progress": "yes"}, "progress"),
        ({"step": 3}, "step"),
        ({"configure_optimizers": "adam"}, "configure_optimizers"),
        ({"configure_optimizers": lambda: None}, "configure_optimizers"),
        ({"train_dataloader": 3}, "train_dataloader"),
        ({"val_dataloader": "batches"}, "val_dataloader"),
        ({"max_length": "x"}, "max_length"),
    ],
    ids=lambda value: (
        None if isinstance(value, str) else "-".join(f"{k}={v!r}"[:40] for k, v in value.items())
    ),
)
def test_finetune_keywords_are_checked_before_training(tv, keywords, field):
    before = state_of(tv.model)
    raises_naming(field, lambda: tv.finetune(PAIRS, **keywords))
    assert same_state(before, state_of(tv.model)), "rejected before any training step"


@pytest.mark.parametrize(
    "returned",
    [lambda: 1.0, lambda: torch.ones(3, requires_grad=True), lambda: None, lambda: torch.tensor(2)],
    ids=["float", "vector", "none", "int-tensor"],
)
def test_a_step_that_returns_no_scalar_loss_is_a_training_error(tv, returned):
    before = state_of(tv.model)
    error = raises_naming(
        "step",
        lambda: tv.finetune(PAIRS, epochs=2, step=lambda batch, index: returned()),
        bpcore.TrainingError,
    )
    assert error.history is not None and len(error.history) == 0
    assert same_state(before, state_of(tv.model))


def test_a_failure_mid_run_carries_the_history_so_far(tv):
    calls = {"train": 0}

    def step(batch, index):
        vectors = tv.model.training_step(batch["inputs"], task="text-vectorisation")
        loss = vectors.pow(2).mean()
        if tv.model.training:
            calls["train"] += 1
            if calls["train"] > 2:
                raise KeyError("boom in epoch 3")
        return loss

    with pytest.raises(bpcore.TrainingError, match="epoch 3") as caught:
        tv.finetune(PAIRS, validation_split=0.0, epochs=5, batch_size=2, early_stopping_epochs=0, step=step)
    assert isinstance(caught.value.__cause__, KeyError)
    assert len(caught.value.history) == 2 and caught.value.history.train_loss[0] > 0


def test_single_member_groups_and_nan_scores(tv):
    raises_naming(
        "params.groups",
        lambda: tv.finetune({"texts": ["a", "b", "c"], "groups": [0, 1, 2]}, variant="triplet"),
    )
    raises_naming(
        "params.similarity_scores[0]",
        lambda: tv.finetune({**PAIRS, "similarity_scores": [math.inf, 0.0]}),
    )


def test_prev_qa_strings_are_not_pairs(tiny_plugin):
    qa = bpcore.QA("tiny-t2t")
    raises_naming("input.prev_qa[0][0]", lambda: qa("Where?", "Here.", prev_qa=["qa"]), bpcore.InputTypeError)
