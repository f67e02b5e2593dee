"""Classification metrics from scikit-learn: single-label (the top label) and multi-label (a threshold)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bpcore.errors import InputError

Scores = Mapping[str, float]


def top_label(scores: Scores) -> str:
    """The most probable label of one answer."""
    return max(scores, key=lambda label: scores[label])


def single_label(truth: Sequence[str], answers: Sequence[Scores]) -> tuple[dict[str, Any], list[str]]:
    """Accuracy, macro F1, per-label scores and the confusion matrix of the top labels; and the top labels.

    The labels are those in the truth or the predictions, as scikit-learn takes them by default.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    predicted = [top_label(scores) for scores in answers]
    labels = sorted(set(truth) | set(predicted))
    values = {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "per_label": per_label(truth, predicted, labels),
        "confusion_matrix": {
            "labels": labels,
            "matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
        },
    }
    return values, predicted


def per_label(
    truth: Any, predicted: Any, labels: Sequence[str], columns: Sequence[int] | None = None
) -> dict[str, Any]:
    """``{label: {"precision", "recall", "f1", "support"}}``; ``columns`` index indicator matrices."""
    from sklearn.metrics import precision_recall_fscore_support

    which = list(columns) if columns is not None else list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=which, zero_division=0
    )
    return {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }


def multi_label(
    truth: Sequence[Sequence[str]], answers: Sequence[Scores], threshold: float
) -> tuple[dict[str, Any], list[list[str]]]:
    """Micro and macro F1 and exact match at ``threshold``, mean average precision; and the labels predicted.

    A label is predicted when its probability is at least ``threshold``. Macro F1 and the per-label
    table count the labels that are true or predicted somewhere; mean average precision, the
    labels true for some item (a label never true has no precision to average).
    """
    import numpy as np
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score

    labels = sorted(
        {label for scores in answers for label in scores} | {label for item in truth for label in item}
    )
    true = np.array([[label in item for label in labels] for item in truth], dtype=int)
    scores = np.array([[answer.get(label, 0.0) for label in labels] for answer in answers], dtype=float)
    predicted = (scores >= threshold).astype(int)
    seen = [i for i in range(len(labels)) if true[:, i].any() or predicted[:, i].any()]
    positive = [i for i in range(len(labels)) if true[:, i].any()]
    if not positive:
        raise InputError("no item has any label: there is nothing to find", field="params.labels")
    values = {
        "f1_micro": float(f1_score(true, predicted, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(true, predicted, labels=seen, average="macro", zero_division=0)),
        "exact_match": float(accuracy_score(true, predicted)),
        "mean_average_precision": float(average_precision_score(true[:, positive], scores[:, positive])),
        "per_label": per_label(true, predicted, [labels[i] for i in seen], seen),
    }
    chosen = [[label for label, on in zip(labels, row) if on] for row in predicted]
    return values, chosen
