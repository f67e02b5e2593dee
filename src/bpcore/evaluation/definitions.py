"""Which metrics each task and variant gets: the one table the evaluation, the docs and finetuning read.

A variant's *kind* follows from its contract (what the task answers, how the variant is
trained), so a new task gets its metrics without a line here. Metric names are the anchors'
own: scikit-learn's scorer names, Sentence Transformers' evaluator keys, SQuAD's and
rouge-score's.

Example::

    from bpcore.evaluation import metrics_for

    [metric.name for metric in metrics_for("text-vectorisation", "cosine_similarity")]
    # ["pearson_cosine", "spearman_cosine"]
"""

from __future__ import annotations

import attrs

from bpcore.contracts import ANSWER_LABELS, ANSWER_TEXT, ANSWER_VECTOR, CONTRACTS, LOSS_COSINE
from bpcore.errors import InputError

#: The kinds of evaluation: what is compared with what.
SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
SIMILARITY = "similarity"
RETRIEVAL = "retrieval"
TEXT = "text"

#: The packages each kind computes with, as (import name, distribution); the evaluate extra has them all.
SKLEARN, SCIPY, ROUGE = ("sklearn", "scikit-learn"), ("scipy", "scipy"), ("rouge_score", "rouge-score")
LIBRARIES = {
    SINGLE_LABEL: (SKLEARN,),
    MULTI_LABEL: (SKLEARN,),
    SIMILARITY: (SKLEARN, SCIPY),
    RETRIEVAL: (SKLEARN,),
    TEXT: (ROUGE,),
}

#: How many neighbours retrieval looks at: recall@k for each k, MRR within the last.
RECALL_AT = (1, 5)
MRR_AT = 10


@attrs.frozen
class MetricDefinition:
    """One metric: its name, what it measures (for the docs), and what computes it.

    Every metric is better when higher. ``table`` marks a nested result (per label, a confusion
    matrix) rather than one number: it is shown, not tracked per epoch.
    """

    name: str
    meaning: str
    computed_by: str
    table: bool = False


def _metric(name: str, meaning: str, computed_by: str, table: bool = False) -> MetricDefinition:
    return MetricDefinition(name, meaning, computed_by, table)


PER_LABEL = _metric(
    "per_label",
    "precision, recall, F1 and support of each label",
    "sklearn.metrics.precision_recall_fscore_support",
    table=True,
)

METRICS: dict[str, tuple[MetricDefinition, ...]] = {
    SINGLE_LABEL: (
        _metric(
            "accuracy",
            "share of items whose most probable label is the true one",
            "sklearn.metrics.accuracy_score",
        ),
        _metric("f1_macro", "F1 of each label, averaged with equal weight", "sklearn.metrics.f1_score"),
        PER_LABEL,
        _metric(
            "confusion_matrix",
            "counts of true label (row) against predicted label (column)",
            "sklearn.metrics.confusion_matrix",
            table=True,
        ),
    ),
    MULTI_LABEL: (
        _metric("f1_micro", "F1 over every item-label decision at the threshold", "sklearn.metrics.f1_score"),
        _metric("f1_macro", "F1 of each label at the threshold, averaged", "sklearn.metrics.f1_score"),
        _metric(
            "exact_match",
            "share of items whose predicted label set is exactly the true one (subset accuracy)",
            "sklearn.metrics.accuracy_score",
        ),
        _metric(
            "mean_average_precision",
            "average precision of each label's ranking of the items, averaged (no threshold)",
            "sklearn.metrics.average_precision_score",
        ),
        PER_LABEL,
    ),
    SIMILARITY: (
        _metric(
            "pearson_cosine",
            "Pearson correlation of the pairs' cosine similarity with the given scores",
            "scipy.stats.pearsonr",
        ),
        _metric(
            "spearman_cosine",
            "Spearman rank correlation of the pairs' cosine similarity with the given scores",
            "scipy.stats.spearmanr",
        ),
    ),
    RETRIEVAL: (
        _metric(
            "cosine_accuracy",
            "share of (anchor, same-group, other-group) triplets where the same-group item is closer",
            "numpy (as sentence-transformers' TripletEvaluator)",
        ),
        *(
            _metric(
                f"cosine_recall@{k}",
                f"share of an item's same-group items among its {k} nearest, averaged over items",
                "numpy (as sentence-transformers' InformationRetrievalEvaluator)",
            )
            for k in RECALL_AT
        ),
        _metric(
            f"cosine_mrr@{MRR_AT}",
            f"1 / rank of the nearest same-group item (0 beyond {MRR_AT}), averaged over items",
            "numpy (as sentence-transformers' InformationRetrievalEvaluator)",
        ),
    ),
    TEXT: (
        _metric(
            "exact_match",
            "share of answers equal to the reference after SQuAD normalisation",
            "SQuAD's normalisation (lower case, no punctuation or articles)",
        ),
        _metric("f1", "token overlap F1 with the reference after SQuAD normalisation", "SQuAD's token F1"),
        _metric(
            "rougeL",
            "ROUGE-L F-measure (longest common subsequence, stemmed), averaged",
            "rouge_score.rouge_scorer.RougeScorer",
        ),
    ),
}


def kind_of(task: str, variant: str | None = None) -> str:
    """The kind of evaluation of ``task``'s ``variant`` (None: its default), from the task contract."""
    contract = CONTRACTS[task]
    chosen = contract.variant(variant)
    if contract.answer == ANSWER_LABELS:
        return MULTI_LABEL if chosen.multi_label else SINGLE_LABEL
    if contract.answer == ANSWER_VECTOR:
        return SIMILARITY if chosen.loss == LOSS_COSINE else RETRIEVAL
    assert contract.answer == ANSWER_TEXT, contract.answer
    return TEXT


def metrics_for(task: str, variant: str | None = None) -> tuple[MetricDefinition, ...]:
    """The metrics ``task.evaluate`` reports for ``variant`` (None: the default), in order."""
    return METRICS[kind_of(task, variant)]


def tracked_metrics(task: str, variant: str | None = None) -> list[str]:
    """The metrics ``finetune(metrics=True)`` records each epoch: those of one number (no tables)."""
    return [metric.name for metric in metrics_for(task, variant) if not metric.table]


def check_early_stopping_metric(name: str, task: str, variant: str | None = None) -> None:
    """``early_stopping_metric`` names the loss (``"-loss"``) or a tracked metric of ``task``'s
    ``variant``, in its direction; else an :class:`~bpcore.InputError` listing the valid names."""
    if name == "-loss":
        return
    names = tracked_metrics(task, variant)
    metric = name.lstrip("-")
    if metric not in names:
        chosen = CONTRACTS[task].variant(variant).name
        raise InputError(
            f"{task} ({chosen}) has no metric {metric!r}; choose one of {names}, or '-loss' (the default)",
            field="early_stopping_metric",
        )
    if name.startswith("-"):  # every metric here is better when higher: "-" would keep the worst epoch
        raise InputError(f"{metric} is better when higher: write {metric!r}", field="early_stopping_metric")
