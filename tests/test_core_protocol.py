"""The core holds models to the protocol: eval mode without gradients, decoded images, checked answers."""

from __future__ import annotations

import inspect

import pytest
import torch
from PIL import Image
from tiny_models import TinyImageModel, TinyTextModel

import bpcore
from bpcore.images import img_to_base64


class DropoutVectoriser(TinyTextModel):
    """Dropout after the embedding, and a record of the mode each call saw."""

    def __init__(self, dim=None, name=None, description=None, tasks=None, details=None, device=None):
        super().__init__(dim, name, description, tasks, details, device)
        self.dropout = torch.nn.Dropout(0.5)
        self.seen: list[tuple[bool, bool, bool]] = []

    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        self.seen.append((self.training, torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        vectors = self.dropout(self.embed(task_input["text"]))
        return vectors if return_tensor else vectors.tolist()


def test_inference_runs_in_eval_mode_without_gradients_and_leaves_the_model_in_it():
    model = DropoutVectoriser(name="dropout-model")
    model.train()
    tv = bpcore.TextVectorisation(model)
    assert tv("same text") == tv("same text")  # dropout is off
    assert model.seen == [(False, False, True)] * 2
    # Switched once, not per call: concurrent calls could not restore a mode safely.
    assert not model.training
    assert not tv("same text", return_tensor=True).requires_grad


class RecordsImages(TinyImageModel):
    def __init__(self, dim=None, name=None, description=None, tasks=None, details=None, device=None):
        super().__init__(dim, name, description, tasks, details, device)
        self.received: list[object] = []

    def process_batch(self, params, task):
        self.received.append(params["image"])
        return super().process_batch(params, task)


def test_finetuning_hands_process_batch_decoded_rgb_images(image_files, tmp_path):
    rgba = Image.new("RGBA", (16, 16), (10, 200, 30, 128))
    images = [
        str(image_files["red"]),
        img_to_base64(Image.open(image_files["blue"])),
        rgba,
        str(image_files["red2"]),
    ]
    model = RecordsImages(name="records-images")
    bpcore.ImageVectorisation(model).finetune(
        {"images": images, "groups": [0, 1, 1, 0]}, validation_split=0.0, epochs=1, seed=0
    )
    assert model.received
    assert all(isinstance(image, Image.Image) and image.mode == "RGB" for image in model.received)


def test_a_bad_finetuning_image_is_reported_before_any_step(image_files):
    model = RecordsImages(name="records-images")
    with pytest.raises(bpcore.InputError, match=r"params\.images\[1\]"):
        bpcore.ImageVectorisation(model).finetune(
            {
                "images": [str(image_files["red"]), "no/such/file.png", str(image_files["red2"])],
                "groups": [0, 1, 0],
            }
        )
    assert model.received == []


class WrongCount(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        return super().__call__(task_input, task, return_tensor)[:-1]


class TensorAlways(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        return self.embed(task_input["text"])


class ListWhenTensorAsked(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        return self.embed(task_input["text"]).tolist()


def test_a_broken_answer_contract_names_the_model_and_its_plugin(tiny_plugin):
    with pytest.raises(
        bpcore.ModelProtocolError, match=r"'wrong'.*WrongCount.*returned 1 answers for 2 items"
    ):
        bpcore.TextVectorisation(WrongCount(name="wrong"))(["a", "b"])
    with pytest.raises(bpcore.ModelProtocolError, match="JSON-ready"):
        bpcore.TextVectorisation(TensorAlways(name="leaky"))("a")
    with pytest.raises(bpcore.ModelProtocolError, match="torch.Tensor"):
        bpcore.TextVectorisation(ListWhenTensorAsked(name="listy"))("a", return_tensor=True)
    # From the registry, the error names the plugin.
    task = bpcore.TextVectorisation("tiny-text")
    task.model.__class__ = WrongCount
    with pytest.raises(bpcore.ModelProtocolError, match="bpcore-core-tests"):
        task(["a", "b"])


class RecordsInput(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        self.last_input = task_input
        return super().__call__(task_input, task, return_tensor)


def test_multi_label_reaches_the_model():
    model = RecordsInput(name="records-input")
    tc = bpcore.TextClassification(model)
    tc("a text", ["x", "y"], multi_label=True)
    assert model.last_input["multi_label"] is True
    tc("a text", ["x", "y"])
    assert model.last_input["multi_label"] is False
    with pytest.raises(bpcore.InputTypeError, match="multi_label"):
        tc("a text", ["x", "y"], multi_label="yes")


@pytest.mark.parametrize(
    ("task", "defaults"),
    [
        (bpcore.QA, {"max_input_length": 256, "max_output_length": 32, "validation_split": 0.15}),
        (bpcore.Emotion, {"max_input_length": 256, "max_output_length": 32}),
        (bpcore.Summarisation, {"max_input_length": 512, "max_output_length": 128}),
        (bpcore.TextGeneration, {"max_input_length": 128, "max_output_length": 32}),
        (bpcore.TextClassification, {"variant": "single_label", "max_length": 128}),
        (bpcore.TextVectorisation, {"variant": "cosine_similarity", "max_length": None}),
        (bpcore.ImageClassification, {"variant": "single_label"}),
        (bpcore.ImageVectorisation, {"variant": "triplet"}),
        (bpcore.ImageTextVectorisation, {"variant": "triplet"}),
    ],
)
def test_each_finetune_signature_names_its_options_with_the_specs_defaults(task, defaults):
    parameters = inspect.signature(task.finetune).parameters
    for name, default in {**defaults, "epochs": 20, "early_stopping_epochs": 1, "batch_size": None}.items():
        assert parameters[name].default == default, (task.__name__, name)
    assert task.finetune.__doc__


def test_unknown_or_malformed_finetune_keywords_are_bpcore_errors(tiny_plugin):
    tv = bpcore.TextVectorisation("tiny-text")
    data = {"texts1": ["a", "b"], "texts2": ["c", "d"], "similarity_scores": [1.0, 0.0]}
    with pytest.raises(bpcore.InputTypeError, match="max_input_length"):
        tv.finetune(data, max_input_length=3)
    with pytest.raises(bpcore.InputError, match="variant"):
        tv.finetune(data, variant=["triplet"])
