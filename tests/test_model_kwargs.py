"""Keywords for a registered model's class: ``AutoModel.from_pretrained(name, **model_kwargs)``.

A user picks a run-time setting of a family's model (bp-st's ``backend="openvino"``, a wider
test model here) by name, without importing the plugin's class.
"""

from __future__ import annotations

import pytest

import bpcore
from bpcore.models import AutoModel


def test_keywords_reach_the_factory_over_the_registered_ones(tiny_plugin):
    assert AutoModel.from_pretrained("tiny-text").dim != 8
    assert AutoModel.from_pretrained("tiny-text", dim=8).dim == 8
    # Over init_kwargs: tiny-text-wide is registered with dim=32.
    assert AutoModel.from_pretrained("tiny-text-wide").dim == 32
    assert AutoModel.from_pretrained("tiny-text-wide", dim=4).dim == 4


def test_what_the_registry_sets_is_not_a_keyword(tiny_plugin):
    with pytest.raises(bpcore.InputError) as raised:
        AutoModel.from_pretrained("tiny-text", name="other")
    assert raised.value.field == "name"


def test_a_keyword_the_class_does_not_take_names_the_model_and_the_keyword(tiny_plugin):
    with pytest.raises(bpcore.ModelLoadError, match=r"tiny-text.*no_such_setting"):
        AutoModel.from_pretrained("tiny-text", no_such_setting=1)


def test_a_saved_model_takes_no_keywords_and_says_why(tiny_plugin):
    bpcore.save(AutoModel.from_pretrained("tiny-text"), "mine")
    with pytest.raises(bpcore.InputError, match="saved model") as raised:
        AutoModel.from_pretrained("mine", dim=8)
    assert raised.value.field == "dim"
    assert AutoModel.from_pretrained("mine").dim == AutoModel.from_pretrained("tiny-text").dim


def test_a_task_passes_model_kwargs_to_a_named_model_or_a_class(tiny_plugin):
    from tiny_models import TinyTextModel

    assert bpcore.TextVectorisation("tiny-text", model_kwargs={"dim": 8}).model.dim == 8
    assert bpcore.TextVectorisation(model_kwargs={"dim": 8}).model.dim == 8  # the default model
    assert bpcore.TextVectorisation(TinyTextModel, model_kwargs={"dim": 8}).model.dim == 8


def test_a_built_model_or_a_remote_task_takes_no_model_kwargs(tiny_plugin):
    built = AutoModel.from_pretrained("tiny-text")
    for task in (
        lambda: bpcore.TextVectorisation(built, model_kwargs={"dim": 8}),
        lambda: bpcore.TextVectorisation(
            "tiny-text", local=False, url="http://127.0.0.1:9", model_kwargs={"dim": 8}
        ),
    ):
        with pytest.raises(bpcore.InputError) as raised:
            task()
        assert raised.value.field == "model_kwargs"
