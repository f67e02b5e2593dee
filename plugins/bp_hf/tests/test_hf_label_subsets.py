"""A finetuned classifier asked about some of its labels (``labels=``): a softmax over those labels only."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_hf import tiny_bert_folder

import bpcore
from bp_hf import HFSeqTCModel

LEARNED = ["sports", "politics", "weather", "film"]
TEXTS = ["the team won the cup", "the vote passed in parliament today", "rain"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> HFSeqTCModel:
    """A tiny BERT whose (untrained) head has learned labels of its own: answers are no trivial 0 or 1."""
    folder = tiny_bert_folder(tmp_path_factory.mktemp("labelled"), id2label=dict(enumerate(LEARNED)))
    return HFSeqTCModel(folder)


def test_a_subset_of_the_learned_labels_gets_a_softmax_of_its_own(classifier):
    tc = bpcore.TextClassification(classifier)
    assert classifier.labels == LEARNED and not classifier.is_multi_label
    everything = tc(TEXTS[0])
    assert set(everything) == set(LEARNED) and math.isclose(sum(everything.values()), 1, rel_tol=1e-5)
    subset = tc(TEXTS[0], ["politics", "sports"])
    assert set(subset) == {"politics", "sports"}
    assert math.isclose(sum(subset.values()), 1, rel_tol=1e-5), subset
    # The softmax of the two labels' logits; their ratio is the one the full answer has.
    logits = classifier.logits([TEXTS[0]])[0]
    expected = torch.softmax(logits[[LEARNED.index("politics"), LEARNED.index("sports")]], dim=0)
    assert [subset["politics"], subset["sports"]] == pytest.approx(expected.tolist(), abs=1e-6)
    assert subset["politics"] / subset["sports"] == pytest.approx(
        everything["politics"] / everything["sports"], rel=1e-4
    )


def test_per_text_subsets_and_top_k_each_sum_to_one(classifier):
    tc = bpcore.TextClassification(classifier)
    wanted = [["film", "weather"], ["sports", "politics", "weather"], ["film"]]
    answers = tc(TEXTS, wanted)
    assert [set(answer) for answer in answers] == [set(labels) for labels in wanted]
    for answer in answers:
        assert math.isclose(sum(answer.values()), 1, rel_tol=1e-5), answer
    assert answers[2] == {"film": pytest.approx(1.0)}
    # top_k keeps the most likely of the subset's own probabilities.
    top = tc(TEXTS[1], wanted[1], top_k=2)
    assert list(top) == list(answers[1])[:2] and top == pytest.approx(dict(list(answers[1].items())[:2]))
