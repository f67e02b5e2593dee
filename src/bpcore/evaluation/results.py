"""What ``task.evaluate`` returns: :class:`Metrics`, a read-only mapping of metric name to value."""

from __future__ import annotations

import math
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


class Metrics(Mapping[str, Any]):
    """Metric name → value: a float, or a nested table (``per_label``, ``confusion_matrix``).

    ``predictions`` holds one entry per example (the top label, the labels over the threshold,
    the generated text, the pair's cosine, the group of the nearest item) when ``evaluate`` was
    asked for them, else None. ``str(metrics)`` is a small table; :meth:`as_dict` is JSON-ready.

    Example::

        metrics = tc.evaluate({"texts": texts, "labels": labels})
        metrics["accuracy"]            # 0.92
        metrics.scalars()              # {"accuracy": 0.92, "f1_macro": 0.91}
        print(metrics)
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        *,
        task: str,
        variant: str | None,
        examples: int,
        predictions: Sequence[Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """Made by ``evaluate``: ``values`` of ``task``'s ``variant`` over ``examples`` examples.

        ``settings``: what shaped the numbers (``{"labels": "learned", "threshold": 0.5}``).
        """
        self._values = types.MappingProxyType({name: _frozen(value) for name, value in values.items()})
        self.task = task
        self.variant = variant
        self.examples = examples
        self.predictions = list(predictions) if predictions is not None else None
        #: How the numbers were reached (e.g. the multi-label threshold, zero-shot or learned labels).
        self.settings = dict(settings or {})

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Metrics({self.scalars()!r})"

    def scalars(self) -> dict[str, float]:
        """The metrics that are one number each (what a training run tracks per epoch)."""
        return {name: value for name, value in self._values.items() if isinstance(value, float)}

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data: task, variant, examples, settings, metrics (NaN as None), predictions."""
        result = {
            "task": self.task,
            "variant": self.variant,
            "examples": self.examples,
            "settings": self.settings,
            "metrics": _plain(self._values),
        }
        if self.predictions is not None:
            result["predictions"] = _plain(self.predictions)
        return result

    def __str__(self) -> str:
        from bpcore.evaluation.tables import render

        title = self.task + (f" ({self.variant})" if self.variant else "")
        settings = "".join(f", {key}: {value}" for key, value in self.settings.items())
        return render(f"{title}: {self.examples} examples{settings}", self._values)


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return types.MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
