"""The vector metrics equal sentence-transformers' evaluators on the same model and data.

The model is the real all-MiniLM-L6-v2, which ships offline with bp-st (registered as
``all-minilm-l6-v2``); sentence-transformers loads the same files as the anchor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import bpcore
from bpcore.plugins import manager as plugins

pytest.importorskip("bp_st")
pytest.importorskip("sentence_transformers")

TEXTS = [
    "How do I reset my password?",
    "I forgot my login password",
    "Where can I change my password?",
    "What is the price of the premium plan?",
    "How much does a subscription cost?",
    "Is there a discount for students?",
    "My parcel has not arrived yet",
    "When will my order be delivered?",
]
GROUPS = ["password", "password", "password", "price", "price", "price", "delivery", "delivery"]
PAIRS = {
    "texts1": [
        "A man is playing a guitar",
        "A woman slices onions",
        "The cat sleeps on the sofa",
        "Kids play football",
        "A plane takes off",
    ],
    "texts2": [
        "Someone plays an instrument",
        "A chef chops vegetables",
        "A dog runs in the park",
        "The stock market fell",
        "An aircraft leaves the runway",
    ],
    "similarity_scores": [0.8, 0.7, 0.2, 0.0, 0.9],
}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Small batches on a small shared machine run faster on one thread."""


@pytest.fixture(scope="module")
def tv() -> Iterator[bpcore.TextVectorisation]:
    """The registered all-MiniLM-L6-v2, through bp-st (the core tests load no installed plugin otherwise)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BPCORE_LOAD_PLUGINS", "st")
        plugins.reset()
        yield bpcore.TextVectorisation("all-minilm-l6-v2", device="cpu")
    plugins.reset()


@pytest.fixture(scope="module")
def sentence_transformer() -> Any:
    from sentence_transformers import SentenceTransformer

    from bp_st.bundled import all_minilm_path

    return SentenceTransformer(str(all_minilm_path()), device="cpu")


def test_pair_correlations_are_embedding_similarity_evaluators(tv, sentence_transformer):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    metrics = tv.evaluate(PAIRS)
    anchor = EmbeddingSimilarityEvaluator(
        PAIRS["texts1"],
        PAIRS["texts2"],
        PAIRS["similarity_scores"],
        similarity_fn_names=["cosine"],
        write_csv=False,
    )(sentence_transformer)
    assert metrics["pearson_cosine"] == pytest.approx(anchor["pearson_cosine"], abs=1e-6)
    assert metrics["spearman_cosine"] == pytest.approx(anchor["spearman_cosine"], abs=1e-6)


def test_triplet_accuracy_is_triplet_evaluators(tv, sentence_transformer):
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator

    texts, groups = TEXTS[1:], GROUPS[1:]  # two or three per group: fewer triplets to encode
    metrics = tv.evaluate({"texts": texts, "groups": groups})
    # Every (anchor, same-group item, other-group item) triplet of the data.
    triplets = [
        (anchor, positive, negative)
        for a, anchor in enumerate(texts)
        for p, positive in enumerate(texts)
        for negative, group in zip(texts, groups)
        if p != a and groups[p] == groups[a] and group != groups[a]
    ]
    anchors, positives, negatives = (list(column) for column in zip(*triplets))
    expected = TripletEvaluator(
        anchors, positives, negatives, similarity_fn_names=["cosine"], write_csv=False
    )(sentence_transformer)
    assert metrics["cosine_accuracy"] == pytest.approx(expected["cosine_accuracy"], abs=1e-6)


def test_retrieval_is_information_retrieval_evaluators(tv, sentence_transformer):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    metrics = tv.evaluate({"texts": TEXTS, "groups": GROUPS})
    # Each item queries the others (the evaluator has no leave-one-out): one run per query, averaged.
    names = ("cosine_recall@1", "cosine_recall@5", "cosine_mrr@10")
    runs = []
    for query, text in enumerate(TEXTS):
        corpus = {f"{i:03d}": other for i, other in enumerate(TEXTS) if i != query}
        relevant = {f"{i:03d}" for i in range(len(TEXTS)) if i != query and GROUPS[i] == GROUPS[query]}
        evaluator = InformationRetrievalEvaluator(
            {"q": text}, corpus, {"q": relevant}, precision_recall_at_k=[1, 5], mrr_at_k=[10], write_csv=False
        )
        runs.append(evaluator(sentence_transformer))
    for name in names:
        assert metrics[name] == pytest.approx(sum(run[name] for run in runs) / len(runs), abs=1e-6), name
