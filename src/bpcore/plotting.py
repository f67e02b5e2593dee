"""Draw a finetuning run's loss curves as a PNG (needs matplotlib: ``pip install 'bpcore[plot]'``),
and beside them, for a run with ``metrics=True``, its metrics.

Example::

    history = bpcore.TextClassification(...).finetune(params, metrics=True)
    bpcore.plot_history(history, "loss.png")

A history read back from JSON (``history.as_dict()``) draws the same picture.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from bpcore.errors import BpcoreError, InputError, InputTypeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bpcore.training import History

__all__ = ["plot_history"]

_DPI = 120
_SIZE = (8.0, 5.0)
# With metrics: the loss panel keeps its width and the metrics panel takes 5 inches beside it.
_SIZE_WITH_METRICS = (13.0, 5.0)
# Above this max/min ratio a linear axis squashes the later, smaller losses into a flat line.
_LOG_SPAN = 100.0


class _Run(NamedTuple):
    """The parts of a history the picture shows, checked and as plain floats."""

    epochs: list[int]
    train_loss: list[float]
    val_loss: list[float]
    best_epoch: int | None
    validated_on: str
    step_losses: list[float]
    #: Each metric's value per epoch (NaN where an epoch has none); empty without ``metrics=True``.
    metrics: dict[str, list[float]]
    early_stopping_metric: str


def plot_history(
    history: History | Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Draw the training and validation loss of each epoch (and of each batch) to a PNG at ``path``.

    ``history`` is what ``finetune`` returned, or its :meth:`~bpcore.training.History.as_dict`
    form. The best epoch is marked; validation losses that are NaN (epochs that measured
    nothing) leave gaps. A run with ``metrics=True`` gets a second panel, beside the losses,
    with each metric per epoch. ``title`` heads the loss panel. Returns the path written;
    missing parent folders are created.

    Example::

        history = tc.finetune(params, epochs=5)
        bpcore.plot_history(history, "history.png", title="text classification")
    """
    run = _read_history(history)
    target = _png_path(path)
    if title is not None and not isinstance(title, str):
        raise InputTypeError(f"must be a str or None, not {type(title).__name__}", field="title")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise BpcoreError("plot_history needs matplotlib: pip install 'bpcore[plot]'") from error
    figure = _draw(Figure, run, title)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A bare Figure on an Agg canvas: pyplot's global state could open windows or leak figures.
    FigureCanvasAgg(figure)
    figure.savefig(target, dpi=_DPI)
    return target


def _read_history(history: Any) -> _Run:
    # A History exists only once bpcore.training (and so torch) is imported; looking it up in
    # sys.modules lets a plot of a history read from JSON skip importing torch.
    training = sys.modules.get("bpcore.training")
    if training is not None and isinstance(history, training.History):
        history = history.as_dict()
    if not isinstance(history, Mapping):
        raise InputTypeError(
            f"must be a History or its as_dict() form, not {type(history).__name__}", field="history"
        )
    records = history.get("epochs")
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)) or not records:
        raise InputError("has no epochs to plot", field="history")
    epochs: list[int] = []
    train: list[float] = []
    val: list[float] = []
    measured: list[dict[str, float]] = []
    for index, record in enumerate(records):
        where = f"history.epochs[{index}]"
        if not isinstance(record, Mapping):
            raise InputTypeError(f"must be an EpochRecord's dict, not {type(record).__name__}", field=where)
        epochs.append(_integer(record.get("epoch"), f"{where}.epoch"))
        train.append(_loss(record.get("train_loss"), f"{where}.train_loss"))
        val.append(_optional(record.get("val_loss"), f"{where}.val_loss"))
        measured.append(_metrics(record.get("metrics"), f"{where}.metrics"))
    best = history.get("best_epoch")
    steps = history.get("step_losses") or []
    if not isinstance(steps, Sequence) or isinstance(steps, (str, bytes)):
        raise InputTypeError(
            f"must be a list of floats, not {type(steps).__name__}", field="history.step_losses"
        )
    return _Run(
        epochs=epochs,
        train_loss=train,
        val_loss=val,
        best_epoch=None if best is None else _integer(best, "history.best_epoch"),
        validated_on=str(history.get("validated_on", "validation split")),
        step_losses=[_loss(loss, f"history.step_losses[{i}]") for i, loss in enumerate(steps)],
        # Every metric any epoch has, in the order they first appear (a resumed run may add some).
        metrics={
            name: [epoch.get(name, math.nan) for epoch in measured]
            for name in dict.fromkeys(name for epoch in measured for name in epoch)
        },
        early_stopping_metric=str(history.get("early_stopping_metric") or "-loss"),
    )


def _optional(value: Any, field: str) -> float:
    # Strict JSON writers turn NaN into null.
    return math.nan if value is None else _loss(value, field)


def _metrics(value: Any, field: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputTypeError(
            f"must be a dict of metric name to number, not {type(value).__name__}", field=field
        )
    return {str(name): _optional(number, f"{field}.{name}") for name, number in value.items()}


def _integer(value: Any, field: str) -> int:
    # numbers.Integral and Real also admit NumPy's scalars, as a hand-built history may hold.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"must be an int, not {type(value).__name__}", field=field)
    return int(value)


def _loss(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"must be a number, not {type(value).__name__}", field=field)
    value = float(value)
    # An infinite loss would stretch the axis until every other point sits on one line.
    return value if math.isfinite(value) else math.nan


def _png_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"must be a str or path, not {type(path).__name__}", field="path")
    target = Path(os.fspath(path))
    if target.suffix.lower() != ".png":
        raise InputError(f"must end in .png (got {str(target)!r})", field="path")
    return target


_TRAIN, _VAL, _BEST = "tab:blue", "tab:orange", "tab:green"
# The metrics' colours: none of the losses' or the best epoch's.
_METRIC_COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def _draw(figure_type: type[Figure], run: _Run, title: str | None) -> Figure:
    figure = figure_type(figsize=_SIZE_WITH_METRICS if run.metrics else _SIZE, dpi=_DPI, layout="constrained")
    if run.metrics:
        axes, metric_axes = figure.subplots(1, 2, width_ratios=(8, 5))
    else:
        axes, metric_axes = figure.add_subplot(), None
    legend = _draw_losses(axes, run)
    if metric_axes is not None:
        _draw_metrics(metric_axes, run)
    best = _mark_best(axes, metric_axes, run)
    if best is not None:
        legend.append(best)
    if title is None:
        title = f"finetuning: {len(run.epochs)} epoch{'' if len(run.epochs) == 1 else 's'}"
        if run.best_epoch is not None:
            title += f", best epoch {run.best_epoch}"
    axes.set_title(title)
    handles, labels = zip(*legend)
    # Below the axes, so the legend never hides a curve, wherever the losses run.
    figure.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return figure


def _draw_losses(axes: Any, run: _Run) -> list[tuple[Any, str]]:
    """The loss curves on ``axes``; their legend entries."""
    # The legend fills column by column: training entries on the left, validation on the right.
    legend: list[tuple[Any, str]] = []
    (line,) = axes.plot(run.epochs, run.train_loss, color=_TRAIN, marker="o", linewidth=2)
    legend.append((line, "training loss"))
    if run.step_losses:
        # Batch i ends at (i + 1) / batches_per_epoch epochs into the run, counted from the
        # epoch before the first (not 0, so a resumed run lines up with its epoch numbers).
        per_epoch = len(run.step_losses) / len(run.epochs)
        steps_x = [run.epochs[0] - 1 + (i + 1) / per_epoch for i in range(len(run.step_losses))]
        (line,) = axes.plot(steps_x, run.step_losses, color=_TRAIN, alpha=0.3, linewidth=0.8, zorder=1)
        legend.append((line, "training loss (per batch)"))
    (line,) = axes.plot(run.epochs, run.val_loss, color=_VAL, marker="s", linewidth=2)
    on_training_data = run.validated_on == "training data"
    legend.append((line, "validation loss (on the training data)" if on_training_data else "validation loss"))
    losses = [x for x in (*run.train_loss, *run.val_loss, *run.step_losses) if not math.isnan(x)]
    if losses and min(losses) > 0 and max(losses) / min(losses) > _LOG_SPAN:
        axes.set_yscale("log")
    _epoch_axis(axes, run)
    axes.set_ylabel("loss")
    return legend


def _draw_metrics(axes: Any, run: _Run) -> None:
    """Each metric per epoch on ``axes``, its legend inside (metrics share one scale, about 0 to 1)."""
    for index, (name, values) in enumerate(run.metrics.items()):
        colour = _METRIC_COLOURS[index % len(_METRIC_COLOURS)]
        axes.plot(run.epochs, values, color=colour, marker="^", linewidth=2, label=name)
    where = "the training data" if run.validated_on == "training data" else "the validation part"
    axes.set_title(f"metrics on {where}")
    _epoch_axis(axes, run, with_steps=False)
    axes.set_ylabel("metric")
    axes.legend(loc="best", fontsize="small")


def _epoch_axis(axes: Any, run: _Run, with_steps: bool = True) -> None:
    from matplotlib.ticker import MaxNLocator

    # Room for the first epoch's marker, or for the batches that lead up to it.
    first = run.epochs[0]
    axes.set_xlim(first - 1 if with_steps and run.step_losses else first - 0.5, max(run.epochs) + 0.5)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.grid(True, alpha=0.3)


def _mark_best(axes: Any, metric_axes: Any, run: _Run) -> tuple[Any, str] | None:
    """A dashed line at the best epoch on each panel, and a ring on what chose it: the validation
    loss, or the ``early_stopping_metric`` in the metrics panel. Its legend entry."""
    if run.best_epoch is None:
        return None
    name = run.early_stopping_metric.lstrip("-")
    by_metric = metric_axes is not None and name in run.metrics
    chosen, values, what = (
        (metric_axes, run.metrics[name], name) if by_metric else (axes, run.val_loss, "val loss")
    )
    lines = [
        panel.axvline(run.best_epoch, color=_BEST, linestyle="--", linewidth=1.5)
        for panel in (axes, metric_axes)
        if panel is not None
    ]
    value = next((v for e, v in zip(run.epochs, values) if e == run.best_epoch), math.nan)
    if math.isnan(value):
        return lines[0], f"best epoch {run.best_epoch}"
    (ring,) = chosen.plot(
        [run.best_epoch],
        [value],
        linestyle="none",
        marker="o",
        markersize=13,
        markerfacecolor="none",
        markeredgecolor=_BEST,
        markeredgewidth=2.5,
        zorder=5,
    )
    # A tuple draws the ring over the dashed line in one legend entry.
    return (lines[0], ring), f"best epoch {run.best_epoch} ({what} {value:.4g})"
