"""Evaluation: ``task.evaluate(params)`` scores a model on labelled data with the metrics users read.

The metrics of each task and variant are declared once (:mod:`bpcore.evaluation.definitions`)
and computed with scikit-learn, SciPy and rouge-score (``pip install 'bpcore[evaluate]'``),
imported only when a task evaluates.

Example::

    tc = bpcore.TextClassification("my-classifier")
    metrics = tc.evaluate({"texts": held_out_texts, "labels": held_out_labels})
    metrics["accuracy"], metrics["f1_macro"]
    print(metrics)
"""

from __future__ import annotations

from bpcore.evaluation.definitions import METRICS, MetricDefinition, kind_of, metrics_for, tracked_metrics
from bpcore.evaluation.results import Metrics

__all__ = ["METRICS", "MetricDefinition", "Metrics", "kind_of", "metrics_for", "tracked_metrics"]
