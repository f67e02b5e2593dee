"""Vectorising text with the real all-MiniLM-L6-v2, through bpcore's TextVectorisation task."""

from __future__ import annotations

import pytest
import torch

import bpcore
from bp_st.model import STModel

TEXTS = ["iPhone 12 128GB", "Apple iPhone 12, 128 GB", "I went for a swim in the lake this morning"]


def test_the_default_model_is_all_minilm_and_gives_384_floats(shared_tv):
    assert shared_tv.model.name == "all-minilm-l6-v2"
    vector = shared_tv("iPhone 12 128GB")
    assert len(vector) == 384
    assert all(isinstance(value, float) for value in vector)


def test_a_batch_gives_one_vector_per_text_equal_to_single_calls(shared_tv):
    vectors = shared_tv(TEXTS)
    assert len(vectors) == len(TEXTS)
    assert all(len(vector) == 384 for vector in vectors)
    singles = torch.tensor([shared_tv(text) for text in TEXTS])
    # Batching pads texts to a common length; the attention mask keeps the padding out.
    assert torch.allclose(torch.tensor(vectors), singles, atol=1e-5)


def test_return_tensor_gives_the_same_vectors_as_a_tensor(shared_tv):
    tensor = shared_tv(TEXTS, return_tensor=True)
    assert isinstance(tensor, torch.Tensor)
    assert tensor.shape == (len(TEXTS), 384)
    assert torch.allclose(tensor.cpu(), torch.tensor(shared_tv(TEXTS)), atol=1e-6)


def test_related_texts_are_closer_than_unrelated_ones(shared_tv):
    phone, same_phone, swim = shared_tv(TEXTS)
    assert bpcore.cosine_similarity(phone, same_phone) > bpcore.cosine_similarity(phone, swim) + 0.3
    close, far = bpcore.cosine_similarity(phone, [same_phone, swim])
    assert close > far


@pytest.mark.parametrize("name", ["all-minilm-l6-v2", "english-small"])
def test_the_model_by_name_or_alias_is_the_default_model(shared_tv, name):
    by_name = bpcore.TextVectorisation(name)
    assert by_name.model.name == "all-minilm-l6-v2"
    assert torch.allclose(by_name(TEXTS, return_tensor=True), shared_tv(TEXTS, return_tensor=True), atol=1e-6)


def test_stmodel_on_a_local_folder_truncates_at_its_max_length(minilm_path):
    model = STModel(str(minilm_path), name="short-minilm", max_length=8)
    tv = bpcore.TextVectorisation(model)
    start = "the quick brown fox jumps over the lazy dog"  # more than 8 tokens with [CLS] and [SEP]
    vectors = tv([start, start + " and then runs far away into the dark forest"])
    assert bpcore.cosine_similarity(vectors[0], vectors[1]) == pytest.approx(1.0, abs=1e-5)
    untruncated = STModel(str(minilm_path), max_length=256)
    whole = untruncated({"text": [start, start + " and then runs far away into the dark forest"]})
    assert bpcore.cosine_similarity(whole[0], whole[1]) < 0.99
