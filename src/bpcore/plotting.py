"""Draw a finetuning run's loss curves as a PNG (needs matplotlib: ``pip install 'bpcore[plot]'``).

Example::

    history = bpcore.TextClassification(...).finetune(params)
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


def plot_history(
    history: History | Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    """Draw the training and validation loss of each epoch (and of each batch) to a PNG at ``path``.

    ``history`` is what ``finetune`` returned, or its :meth:`~bpcore.training.History.as_dict`
    form. The best epoch is marked; validation losses that are NaN (epochs that measured
    nothing) leave gaps. ``title`` heads the plot. Returns the path written; missing parent
    folders are created.

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
    for index, record in enumerate(records):
        where = f"history.epochs[{index}]"
        if not isinstance(record, Mapping):
            raise InputTypeError(f"must be an EpochRecord's dict, not {type(record).__name__}", field=where)
        epochs.append(_integer(record.get("epoch"), f"{where}.epoch"))
        train.append(_loss(record.get("train_loss"), f"{where}.train_loss"))
        # Strict JSON writers turn NaN into null.
        val_loss = record.get("val_loss")
        val.append(math.nan if val_loss is None else _loss(val_loss, f"{where}.val_loss"))
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
    )


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


def _draw(figure_type: type[Figure], run: _Run, title: str | None) -> Figure:
    from matplotlib.ticker import MaxNLocator

    figure = figure_type(figsize=_SIZE, dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    train_colour, val_colour, best_colour = "tab:blue", "tab:orange", "tab:green"
    # The legend fills column by column: training entries on the left, validation on the right.
    legend: list[tuple[Any, str]] = []

    (line,) = axes.plot(run.epochs, run.train_loss, color=train_colour, marker="o", linewidth=2)
    legend.append((line, "training loss"))
    first = run.epochs[0]
    if run.step_losses:
        # Batch i ends at (i + 1) / batches_per_epoch epochs into the run, counted from the
        # epoch before the first (not 0, so a resumed run lines up with its epoch numbers).
        per_epoch = len(run.step_losses) / len(run.epochs)
        steps_x = [first - 1 + (i + 1) / per_epoch for i in range(len(run.step_losses))]
        (line,) = axes.plot(steps_x, run.step_losses, color=train_colour, alpha=0.3, linewidth=0.8, zorder=1)
        legend.append((line, "training loss (per batch)"))

    (line,) = axes.plot(run.epochs, run.val_loss, color=val_colour, marker="s", linewidth=2)
    on_training_data = run.validated_on == "training data"
    legend.append((line, "validation loss (on the training data)" if on_training_data else "validation loss"))

    if run.best_epoch is not None:
        best_line = axes.axvline(run.best_epoch, color=best_colour, linestyle="--", linewidth=1.5)
        best_val = next((v for e, v in zip(run.epochs, run.val_loss) if e == run.best_epoch), math.nan)
        if math.isnan(best_val):
            legend.append((best_line, f"best epoch {run.best_epoch}"))
        else:
            (ring,) = axes.plot(
                [run.best_epoch],
                [best_val],
                linestyle="none",
                marker="o",
                markersize=13,
                markerfacecolor="none",
                markeredgecolor=best_colour,
                markeredgewidth=2.5,
                zorder=5,
            )
            # A tuple draws the ring over the dashed line in one legend entry.
            legend.append(((best_line, ring), f"best epoch {run.best_epoch} (val loss {best_val:.4g})"))

    losses = [x for x in (*run.train_loss, *run.val_loss, *run.step_losses) if not math.isnan(x)]
    if losses and min(losses) > 0 and max(losses) / min(losses) > _LOG_SPAN:
        axes.set_yscale("log")

    # Room for the first epoch's marker, or for the batches that lead up to it.
    axes.set_xlim(first - 1 if run.step_losses else first - 0.5, max(run.epochs) + 0.5)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.grid(True, alpha=0.3)
    if title is None:
        title = f"finetuning: {len(run.epochs)} epoch{'' if len(run.epochs) == 1 else 's'}"
        if run.best_epoch is not None:
            title += f", best epoch {run.best_epoch}"
    axes.set_title(title)
    handles, labels = zip(*legend)
    # Below the axes, so the legend never hides a curve, wherever the losses run.
    figure.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return figure
