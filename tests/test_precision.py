"""precision="bf16" / "auto": answers close to fp32, the model handed in unchanged, the lever really runs."""

from __future__ import annotations

import pytest
import torch
from serve_helpers import call, running_server

import bpcore
from bpcore.plugins import manager as plugins
from bpcore.precision import native_bf16

TEXTS = ["A cat sits on the mat.", "Stock prices fell sharply on Monday.", "I love pizza"]


@pytest.fixture(scope="module")
def minilm():
    """The registered all-MiniLM-L6-v2, through bp-st (the core tests load no installed plugin otherwise)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BPCORE_LOAD_PLUGINS", "st")
        plugins.reset()
        yield bpcore.TextVectorisation("all-minilm-l6-v2", device="cpu").model
    plugins.reset()


def test_bf16_answers_agree_with_fp32_and_the_model_keeps_its_weights(minilm):
    before = {name: tensor.clone() for name, tensor in minilm.state_dict().items()}
    fp32 = bpcore.TextVectorisation(minilm)(TEXTS, return_tensor=True)
    task = bpcore.TextVectorisation(minilm, precision="bf16")
    bf16 = task(TEXTS, return_tensor=True)
    assert task.precision == "bf16"
    assert not torch.equal(fp32, bf16)  # the lever ran: bfloat16 products round differently
    assert torch.nn.functional.cosine_similarity(fp32, bf16.float()).min() > 0.999
    after = minilm.state_dict()
    assert all(
        after[name].dtype == tensor.dtype and torch.equal(after[name], tensor)
        for name, tensor in before.items()
    )
    assert torch.equal(
        bpcore.TextVectorisation(minilm)(TEXTS, return_tensor=True), fp32
    )  # nothing left behind


def test_auto_is_bf16_only_where_the_hardware_has_it(minilm):
    task = bpcore.TextVectorisation(minilm, precision="auto")
    assert task.precision == ("bf16" if native_bf16("cpu") else "fp32")
    if not native_bf16("cpu"):  # never slower than fp32 here: it is fp32, the same answers
        fp32 = bpcore.TextVectorisation(minilm)(TEXTS, return_tensor=True)
        assert torch.equal(task(TEXTS, return_tensor=True), fp32)


@pytest.mark.parametrize("bad", ["fp16", "BF16", None, 16])
def test_an_unknown_precision_is_an_input_error_naming_it(minilm, bad):
    with pytest.raises(bpcore.InputError, match="precision") as caught:
        bpcore.TextVectorisation(minilm, precision=bad)
    assert caught.value.field == "precision"


def test_a_remote_task_leaves_precision_to_the_server():
    with pytest.raises(bpcore.InputError, match="server") as caught:
        bpcore.TextVectorisation(local=False, url="http://127.0.0.1:9", precision="bf16")
    assert caught.value.field == "precision"


def test_a_server_started_with_bf16_answers_as_a_bf16_call(minilm, monkeypatch):
    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", "st")  # the server loads its own copy through bp-st
    plugins.reset()
    expected = bpcore.TextVectorisation(minilm, precision="bf16")(TEXTS)
    fp32 = bpcore.TextVectorisation(minilm)(TEXTS)
    with running_server(precision="bf16") as url:
        status, body, _ = call(
            f"{url}/v1/text-vectorisation", "POST", {"model": "all-minilm-l6-v2", "text": TEXTS}
        )
    assert status == 200, body
    got = torch.tensor(body["answer"])
    assert torch.allclose(got, torch.tensor(expected), atol=1e-6)
    assert not torch.allclose(got, torch.tensor(fp32), atol=1e-6)
