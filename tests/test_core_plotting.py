"""bpcore.plot_history: the PNG shows the run's losses, whichever form the history comes in."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from bpcore.errors import BpcoreError, InputError, InputTypeError  # noqa: E402
from bpcore.plotting import plot_history  # noqa: E402
from bpcore.training import EpochRecord, History  # noqa: E402

TRAIN = [0.92, 0.61, 0.47, 0.39, 0.33, 0.29, 0.26, 0.24]
VAL = [0.81, 0.62, 0.55, 0.51, 0.49, 0.50, 0.52, 0.55]


def make_history(best_epoch: int | None = 5, steps_per_epoch: int = 4, **fields: Any) -> History:
    epochs = [EpochRecord(i + 1, train, val, 1.5, 2e-5) for i, (train, val) in enumerate(zip(TRAIN, VAL))]
    steps = [train * (1.2 - 0.1 * s) for train in TRAIN for s in range(steps_per_epoch)]
    return History(epochs=epochs, best_epoch=best_epoch, step_losses=steps, **fields)


def pixels(path: Path) -> bytes:
    with Image.open(path) as image:
        return image.convert("RGB").tobytes()


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures plot_history saves, to check what they show beyond their pixels."""
    figures: list[Figure] = []
    save = Figure.savefig

    def recording_save(self: Figure, *args: Any, **kwargs: Any) -> None:
        figures.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_save)
    return figures


def legend_labels(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.legends[0].get_texts()]


def test_writes_a_png_into_new_folders_and_returns_its_path(tmp_path):
    target = tmp_path / "runs" / "first" / "loss.png"
    written = plot_history(make_history(), str(target))
    assert written == target
    with Image.open(target) as image:
        assert image.format == "PNG"
        assert image.size == (960, 600)
        # Not blank: curves, text and the white background make many colours.
        assert len(image.convert("RGB").getcolors(maxcolors=100_000) or []) > 50


def test_the_picture_follows_the_best_epoch_and_the_losses(tmp_path):
    best3 = plot_history(make_history(best_epoch=3), tmp_path / "best3.png")
    best5 = plot_history(make_history(best_epoch=5), tmp_path / "best5.png")
    no_steps = plot_history(make_history(best_epoch=5, steps_per_epoch=0), tmp_path / "no_steps.png")
    assert pixels(best3) != pixels(best5)
    assert pixels(no_steps) != pixels(best5)


def test_the_dict_and_json_forms_draw_the_same_png(tmp_path):
    history = make_history()
    history.epochs[2] = EpochRecord(3, 0.47, math.nan)  # NaN survives Python's JSON round trip
    from_history = plot_history(history, tmp_path / "history.png")
    from_dict = plot_history(history.as_dict(), tmp_path / "dict.png")
    from_json = plot_history(json.loads(json.dumps(history.as_dict())), tmp_path / "json.png")
    assert from_history.read_bytes() == from_dict.read_bytes() == from_json.read_bytes()


def test_legend_title_and_batch_positions(tmp_path, drawn):
    plot_history(make_history(best_epoch=5), tmp_path / "loss.png")
    (figure,) = drawn
    assert legend_labels(figure) == [
        "training loss",
        "training loss (per batch)",
        "validation loss",
        "best epoch 5 (val loss 0.49)",
    ]
    axes = figure.axes[0]
    assert axes.get_title() == "finetuning: 8 epochs, best epoch 5"
    assert (axes.get_xlabel(), axes.get_ylabel(), axes.get_yscale()) == ("epoch", "loss", "linear")
    batches = next(line for line in axes.get_lines() if len(line.get_xdata()) == 32)
    # 4 batches an epoch: the 4th batch of epoch 1 ends at 1.0, the last of epoch 8 at 8.0.
    assert list(batches.get_xdata()[:4]) == [0.25, 0.5, 0.75, 1.0]
    assert batches.get_xdata()[-1] == 8.0


def test_validating_on_the_training_data_nan_gaps_and_a_title(tmp_path, drawn):
    history = make_history(best_epoch=2, steps_per_epoch=0, validated_on="training data")
    history.epochs[0] = EpochRecord(1, 0.92, math.nan)
    plot_history(history, tmp_path / "loss.png", title="my run")
    (figure,) = drawn
    assert legend_labels(figure) == [
        "training loss",
        "validation loss (on the training data)",
        "best epoch 2 (val loss 0.62)",
    ]
    assert figure.axes[0].get_title() == "my run"


def test_a_log_scale_only_for_positive_losses_spanning_two_orders(tmp_path, drawn):
    def losses(train: list[float]) -> dict[str, Any]:
        epochs = [{"epoch": i + 1, "train_loss": loss, "val_loss": loss} for i, loss in enumerate(train)]
        return {"epochs": epochs, "best_epoch": None}

    plot_history(losses([5.0, 0.5, 0.01]), tmp_path / "wide.png")
    plot_history(losses([5.0, 0.5, 0.1]), tmp_path / "narrow.png")
    plot_history(losses([5.0, 0.5, -0.01]), tmp_path / "negative.png")
    assert [figure.axes[0].get_yscale() for figure in drawn] == ["log", "linear", "linear"]
    assert drawn[0].axes[0].get_title() == "finetuning: 3 epochs"


@pytest.mark.parametrize(
    ("history", "path", "error", "field"),
    [
        (History(), "loss.png", InputError, "history"),
        ({"epochs": []}, "loss.png", InputError, "history"),
        ({}, "loss.png", InputError, "history"),
        ([EpochRecord(1, 0.5, 0.4)], "loss.png", InputTypeError, "history"),
        ("history.json", "loss.png", InputTypeError, "history"),
        (None, "loss.png", InputTypeError, "history"),
        (
            {"epochs": [{"epoch": 1, "val_loss": 0.4}]},
            "loss.png",
            InputTypeError,
            "history.epochs[0].train_loss",
        ),
        ({"epochs": ["0.5"]}, "loss.png", InputTypeError, "history.epochs[0]"),
        (make_history(), "loss.jpg", InputError, "path"),
        (make_history(), "loss", InputError, "path"),
        (make_history(), 42, InputTypeError, "path"),
    ],
)
def test_bad_input_names_the_field(tmp_path, monkeypatch, history, path, error, field):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as raised:
        plot_history(history, path)
    assert raised.value.field == field
    assert list(tmp_path.iterdir()) == []


def test_a_clear_error_without_matplotlib(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BpcoreError, match=r"pip install 'bpcore\[plot\]'"):
        plot_history(make_history(), tmp_path / "loss.png")


def test_importing_the_module_imports_neither_matplotlib_nor_torch():
    code = "import sys, bpcore.plotting; print(sorted({'matplotlib', 'torch'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
