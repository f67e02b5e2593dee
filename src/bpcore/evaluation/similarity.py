"""Vector metrics: correlation of pairs' cosine with their scores, and retrieval of same-group items.

They are computed as sentence-transformers' evaluators compute them (``EmbeddingSimilarityEvaluator``,
``TripletEvaluator``, ``InformationRetrievalEvaluator``), so the numbers match theirs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from bpcore.contracts.examples import group_index
from bpcore.errors import InputError
from bpcore.evaluation.definitions import MRR_AT, RECALL_AT

#: Query rows scored at once: bounds the similarity matrix held in memory.
ROWS = 1024


def pairs(scores: Sequence[float], vectors1: Any, vectors2: Any) -> tuple[dict[str, Any], list[float]]:
    """Pearson and Spearman correlation of each pair's cosine similarity with its score; and the cosines."""
    from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
    from sklearn.metrics.pairwise import paired_cosine_distances

    if len(scores) < 2 or len(set(scores)) < 2:
        raise InputError(
            "a correlation needs at least two pairs with different similarity_scores",
            field="params.similarity_scores",
        )
    cosines = 1.0 - paired_cosine_distances(_matrix(vectors1), _matrix(vectors2))
    with warnings.catch_warnings():
        # Identical vectors for every pair (an untrained model) correlate with nothing: NaN, said once.
        warnings.simplefilter("ignore", ConstantInputWarning)
        pearson = float(pearsonr(scores, cosines)[0])
        spearman = float(spearmanr(scores, cosines)[0])
    return {"pearson_cosine": pearson, "spearman_cosine": spearman}, [float(value) for value in cosines]


def groups(group_ids: Sequence[Any], vectors: Any) -> tuple[dict[str, Any], list[Any]]:
    """Triplet accuracy, recall@k and MRR of retrieving each item's same-group items among the others;
    and the group of each item's nearest other item.

    Every item is a query (items alone in their group are skipped); the others are the corpus,
    ranked by cosine similarity, ties by position. The params checks ensure two groups and a
    group of two, so there is a query and a triplet.
    """
    import numpy as np
    from sklearn.metrics.pairwise import cosine_similarity

    matrix, ids = _matrix(vectors), np.array(group_index(group_ids))
    nearest: list[Any] = []
    per_query: list[tuple[float, ...]] = []
    wins = total = 0
    for start in range(0, len(ids), ROWS):
        for query, row in enumerate(cosine_similarity(matrix[start : start + ROWS], matrix), start):
            row[query] = -np.inf  # an item never retrieves itself
            order = np.argsort(-row, kind="stable")
            nearest.append(group_ids[int(order[0])])
            same = ids == ids[query]
            same[query] = False
            if same.any():
                won, count = _triplets(row[same], row[ids != ids[query]])
                wins, total = wins + won, total + count
                per_query.append(_ranking(same[order], int(same.sum())))
    names = [*(f"cosine_recall@{k}" for k in RECALL_AT), f"cosine_mrr@{MRR_AT}"]
    means = np.mean(per_query, axis=0)
    return {"cosine_accuracy": wins / total, **{n: float(m) for n, m in zip(names, means)}}, nearest


def _ranking(hits: Any, relevant: int) -> tuple[float, ...]:
    """Recall@k for each k of the ranked hits, then the reciprocal rank of the first within MRR_AT (0: none)."""
    import numpy as np

    first = np.flatnonzero(hits[:MRR_AT])
    reciprocal = 1.0 / (first[0] + 1) if len(first) else 0.0
    return (*(float(hits[:k].sum()) / relevant for k in RECALL_AT), float(reciprocal))


def _triplets(positives: Any, negatives: Any) -> tuple[int, int]:
    """How many (positive, negative) pairs have the positive strictly closer, of how many."""
    import numpy as np

    # For each positive, the negatives below it: a binary search of the sorted negatives.
    below = np.searchsorted(np.sort(negatives), positives, side="left")
    return int(below.sum()), len(positives) * len(negatives)


def _matrix(vectors: Any) -> Any:
    import numpy as np

    return np.asarray(vectors, dtype=np.float64)
