"""Metrics as plain aligned text: the numbers, then the per-label table and the confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def render(heading: str, values: Mapping[str, Any]) -> str:
    """``heading``, a metric/value table of the numbers, and the nested tables below it."""
    numbers = [(name, number(value)) for name, value in values.items() if isinstance(value, float)]
    blocks = [heading, aligned(("metric", "value"), numbers)]
    if "per_label" in values:
        blocks.append(_per_label(values["per_label"]))
    if "confusion_matrix" in values:
        blocks.append(_confusion(values["confusion_matrix"]))
    return "\n\n".join(blocks)


def number(value: float) -> str:
    return "nan" if value != value else f"{value:.4f}"


def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell: the first left-aligned (names), the rest right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        )
        for row in (headers, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)


def _per_label(table: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [
        (label, *(number(scores[key]) for key in ("precision", "recall", "f1")), str(scores["support"]))
        for label, scores in table.items()
    ]
    return aligned(("label", "precision", "recall", "f1", "support"), rows)


def _confusion(confusion: Mapping[str, Any]) -> str:
    labels = list(confusion["labels"])
    rows = [(label, *(str(count) for count in counts)) for label, counts in zip(labels, confusion["matrix"])]
    return "confusion matrix (rows: true label, columns: predicted)\n" + aligned(("", *labels), rows)
