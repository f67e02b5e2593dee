"""Model classes as plugins write them: identity from the core, spec-style PathModel arguments."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, BertConfig, BertModel
from typing_extensions import Unpack

import bpcore
from bpcore.plugins import BaseModel, ModelIdentity, PathModel


class Doubler(BaseModel):
    """A family class as the plugin guide writes it: its own argument, then ``**identity``."""

    default_tasks = ("text-vectorisation",)
    default_description = "doubles a fixed vector"

    def __init__(self, scale: float = 2.0, **identity: Unpack[ModelIdentity]) -> None:
        super().__init__(None, **identity)
        self.weight = torch.nn.Parameter(torch.full((3,), float(scale)))

    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        rows = self.weight.detach().expand(len(task_input["text"]), 3)
        return rows if return_tensor else rows.tolist()


def test_the_class_defaults_fill_what_the_constructor_was_not_told():
    model = Doubler()
    assert (model.name, model.description, model.tasks, model.details) == (
        None,
        "doubles a fixed vector",
        ["text-vectorisation"],
        {},
    )
    told = Doubler(3.0, name="tripler", description="triples", tasks=["text-vectorisation"], details={"a": 1})
    assert (told.name, told.description, told.details) == ("tripler", "triples", {"a": 1})
    assert told.init_arguments == {
        "scale": 3.0,
        "name": "tripler",
        "description": "triples",
        "tasks": ["text-vectorisation"],
        "details": {"a": 1},
    }


def test_identity_and_own_arguments_survive_save_and_load(tmp_path):
    model = Doubler(3.0, name="tripler")
    bpcore.save(model, "tripler", path=tmp_path / "saved", description="triples texts")
    loaded = bpcore.load(tmp_path / "saved", trust_code=True)  # the class lives in this test module
    assert loaded.name == "tripler" and loaded.description == "triples texts"
    assert bpcore.TextVectorisation(loaded)("x") == [3.0, 3.0, 3.0]


def test_a_misspelled_identity_argument_is_not_taken_silently():
    with pytest.raises(bpcore.InputTypeError, match="'nmae'"):
        Doubler(nmae="typo")  # type: ignore[call-arg]


def test_pathmodel_takes_a_class_with_from_pretrained_as_the_spec_passes_it(tmp_path):
    config = BertConfig(
        vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(tmp_path / "bert")
    from_class = PathModel(str(tmp_path / "bert"), init_model=AutoModel)
    from_function = PathModel(str(tmp_path / "bert"), init_model=AutoModel.from_pretrained)
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        first = from_class.model(input_ids=ids).last_hidden_state
        second = from_function.model(input_ids=ids).last_hidden_state
    assert isinstance(from_class.model, BertModel)
    assert torch.equal(first, second)
