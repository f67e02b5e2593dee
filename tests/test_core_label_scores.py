"""The one rule every classifier's answers follow: bpcore.plugins.learned_label_answers and ranked."""

from __future__ import annotations

import math

import pytest
import torch

import bpcore
from bpcore.plugins import learned_label_answers, ranked

LABELS = ["sport", "politics", "food"]
LOGITS = torch.tensor([[2.0, 0.5, -1.0], [-1.0, 0.0, 3.0]])


def test_single_label_answers_are_a_sorted_softmax():
    answers = learned_label_answers(LOGITS, LABELS)
    assert [list(answer) for answer in answers] == [
        ["sport", "politics", "food"],
        ["food", "politics", "sport"],
    ]
    for answer, row in zip(answers, LOGITS):
        assert math.isclose(sum(answer.values()), 1.0, rel_tol=1e-6)
        assert answer["sport"] == pytest.approx(row.softmax(-1)[0].item())


def test_multi_label_answers_are_independent_sigmoids():
    answer = learned_label_answers(LOGITS, LABELS, multi_label=True)[0]
    assert answer["sport"] == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())
    assert sum(answer.values()) > 1.0


def test_a_subset_of_the_learned_labels_is_renormalised_per_item():
    answers = learned_label_answers(LOGITS, LABELS, wanted=[["politics", "food"], None])
    assert set(answers[0]) == {"politics", "food"}
    assert math.isclose(sum(answers[0].values()), 1.0, rel_tol=1e-6)
    assert answers[0]["politics"] == pytest.approx(torch.tensor([0.5, -1.0]).softmax(-1)[0].item())
    assert set(answers[1]) == set(LABELS)


def test_top_k_keeps_the_most_probable():
    assert list(learned_label_answers(LOGITS, LABELS, top_k=1)[1]) == ["food"]
    assert ranked({"a": 0.1, "b": 0.7, "c": 0.2}, 2) == {"b": 0.7, "c": 0.2}
    assert list(ranked({"a": 0.1, "b": 0.7, "c": 0.2})) == ["b", "c", "a"]


def test_a_label_the_model_never_learned_is_an_input_error_naming_the_item():
    with pytest.raises(bpcore.InputError) as caught:
        learned_label_answers(LOGITS, LABELS, wanted=[None, ["food", "weather"]])
    assert caught.value.problems[0][0] == "input.labels[1]"
    assert "weather" in str(caught.value)


def test_logits_that_do_not_match_the_labels_are_a_protocol_error():
    with pytest.raises(bpcore.ModelProtocolError, match="3 labels"):
        learned_label_answers(torch.zeros(2, 5), LABELS)
