"""``finetune(metrics=True)``: the task's evaluation metrics on the validation part each epoch, in
the history, the trackers, the plot and checkpoints; ``early_stopping_metric`` picks the kept
weights and stops early by a metric (tiny local models)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from core_helpers import TESTS_DIR, same_state, state_of
from tiny_models import TinyTextModel
from torch.utils.data import DataLoader

import bpcore
from bpcore.cli import main
from bpcore.training import History

pytestmark = pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")

TOPICS = {
    "politics": "senate vote election minister parliament law party tax bill".split(),
    "science": "telescope galaxy cells physics experiment molecule lab genome comet".split(),
    "sport": "match goal team coach league striker cup player score".split(),
}


def separable(count: int = 60, seed: int = 0) -> dict[str, list[str]]:
    """Texts of three words from one topic's words, labelled with the topic, the topics in turn."""
    rng = random.Random(seed)
    labels = [list(TOPICS)[index % 3] for index in range(count)]
    return {"texts": [" ".join(rng.sample(TOPICS[label], 3)) for label in labels], "labels": labels}


PARAMS = separable()
# The last quarter validates, so a test can evaluate those rows itself.
SPLIT = (list(range(45)), list(range(45, 60)))
VALIDATION = {key: [column[index] for index in SPLIT[1]] for key, column in PARAMS.items()}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models on a small shared machine run faster on one thread."""


def classifier(seed: int = 0) -> bpcore.TextClassification:
    torch.manual_seed(seed)
    return bpcore.TextClassification(TinyTextModel())


def finetune(task: bpcore.TextClassification, **options: Any) -> History:
    # A slow learning rate: accuracy starts near chance and reaches 1 a few epochs before the
    # validation loss stops falling, so the two choose different best epochs.
    defaults = {
        "validation_split": SPLIT,
        "epochs": 8,
        "batch_size": 8,
        "seed": 0,
        "learning_rate": 0.003,
        "early_stopping_epochs": 0,
        "metrics": True,
        "progress": False,
    }
    return task.finetune(PARAMS, **{**defaults, **options})


def accuracy(history: History) -> list[float]:
    return [metrics["accuracy"] for metrics in history.metrics]


def first_best(values: list[float]) -> int:
    """The epoch (1-based) of the first highest value: a later tie is no improvement."""
    return values.index(max(values)) + 1


def trajectory(history: History) -> dict[str, Any]:
    """What a run did, without its timings."""
    return {
        "train_loss": history.train_loss,
        "val_loss": history.val_loss,
        "step_losses": history.step_losses,
        "metrics": history.metrics,
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
    }


# -- the metrics, each epoch --------------------------------------------------------------------


def test_accuracy_rises_from_chance_to_090_in_the_history():
    task = classifier()
    history = finetune(task)
    assert [set(metrics) for metrics in history.metrics] == [{"accuracy", "f1_macro"}] * 8
    # Three balanced topics: chance is 1/3.
    assert accuracy(history)[0] <= 0.6 and max(accuracy(history)) >= 0.9
    # The last epoch's numbers are the task's own evaluation of those weights on the validation rows
    # (with the loss choosing, the last epoch, still improving, is the one kept).
    assert history.best_epoch == 8
    assert history.metrics[-1] == task.evaluate(VALIDATION).scalars()


def test_metrics_do_not_change_the_training():
    measured, plain = finetune(classifier()), finetune(classifier(), metrics=False)
    assert plain.metrics == [{}] * 8
    assert {**trajectory(plain), "metrics": None} == {**trajectory(measured), "metrics": None}


# -- early stopping by a metric -----------------------------------------------------------------


def test_early_stopping_metric_keeps_the_most_accurate_epoch():
    task = classifier()
    history = finetune(task, early_stopping_metric="accuracy")
    best = first_best(accuracy(history))
    assert history.best_epoch == best and history.early_stopping_metric == "accuracy"
    # The loss would have kept another epoch: the choice is the metric's.
    assert best != history.val_loss.index(min(history.val_loss)) + 1
    # The kept weights are that epoch's: they score its numbers, and equal a run that ended there.
    assert task.evaluate(VALIDATION).scalars() == history.metrics[best - 1]
    shorter = classifier()
    finetune(shorter, epochs=best, early_stopping_metric="accuracy")
    assert same_state(state_of(task.model), state_of(shorter.model))


def test_early_stopping_by_a_metric_stops_when_it_stops_improving():
    whole = finetune(classifier(), epochs=12, early_stopping_metric="accuracy")
    patience = 2
    stop = first_best(accuracy(whole)) + patience  # accuracy reaches 1 and stays: no gain after
    assert stop < 12
    stopped = finetune(
        classifier(), epochs=12, early_stopping_metric="accuracy", early_stopping_epochs=patience
    )
    assert len(stopped) == stop and stopped.stopped_early
    assert stopped.metrics == whole.metrics[:stop]
    # The validation loss still falls: by the loss the same run goes on to the end.
    by_loss = finetune(classifier(), epochs=12, early_stopping_epochs=patience)
    assert len(by_loss) == 12 and not by_loss.stopped_early


def test_minus_loss_is_the_default():
    default, task = finetune(classifier(), early_stopping_epochs=1), classifier()
    by_loss = finetune(task, early_stopping_epochs=1, early_stopping_metric="-loss")
    assert trajectory(by_loss) == trajectory(default)
    unmeasured = classifier()
    plain = finetune(unmeasured, early_stopping_epochs=1, metrics=False)
    assert plain.best_epoch == by_loss.best_epoch and plain.val_loss == by_loss.val_loss
    assert same_state(state_of(task.model), state_of(unmeasured.model))


# -- trackers, plot, checkpoints ----------------------------------------------------------------


def test_a_tracker_gets_the_metrics_of_each_epoch(tmp_path: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = finetune(classifier(), epochs=3, log_with="tensorboard", log_dir=tmp_path)
    [events] = (tmp_path / "bpcore-finetune").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    for name in ("accuracy", "f1_macro"):
        logged = accumulator.Scalars(f"epoch/val_{name}")
        assert [event.value for event in logged] == pytest.approx([m[name] for m in history.metrics])
    # Each epoch's metrics at the step its losses are logged at.
    steps = [event.step for event in accumulator.Scalars("epoch/val_loss")]
    assert [event.step for event in accumulator.Scalars("epoch/val_accuracy")] == steps and len(steps) == 3


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures plot_history saves, to check what they show beyond their pixels."""
    from matplotlib.figure import Figure

    figures: list[Figure] = []
    save = Figure.savefig

    def recording_save(self: Figure, *args: Any, **kwargs: Any) -> None:
        figures.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_save)
    return figures


def test_plot_history_draws_the_metrics_beside_the_losses(tmp_path: Path, drawn: list[Any]):
    from PIL import Image

    history = finetune(classifier(), epochs=4, early_stopping_metric="accuracy")
    with_metrics = bpcore.plot_history(history, tmp_path / "metrics.png")
    without = bpcore.plot_history(finetune(classifier(), epochs=4, metrics=False), tmp_path / "loss.png")
    measured, plain = drawn
    assert len(plain.axes) == 1 and len(measured.axes) == 2
    panel = measured.axes[1]
    curves = {
        line.get_label(): list(line.get_ydata()) for line in panel.get_lines() if line.get_label()[0] != "_"
    }
    assert curves == {name: [m[name] for m in history.metrics] for name in ("accuracy", "f1_macro")}
    best = history.best_epoch
    # The best epoch's legend entry names what chose it.
    labels = [text.get_text() for text in measured.legends[0].get_texts()]
    assert labels[-1] == f"best epoch {best} (accuracy {history.metrics[best - 1]['accuracy']:.4g})"
    with Image.open(with_metrics) as wide, Image.open(without) as narrow:
        assert wide.size[1] == narrow.size[1] and wide.size[0] > narrow.size[0] * 1.5
    # Read back from JSON (NaN as null, as the command line's --json writes it), it draws the same.
    again = History.from_dict(json.loads(json.dumps(history.as_dict())))
    assert again.metrics == history.metrics
    assert bpcore.plot_history(again, tmp_path / "again.png").read_bytes() == with_metrics.read_bytes()


def test_a_resumed_run_ends_like_an_uninterrupted_one(tmp_path: Path):
    whole_task = classifier()
    whole = finetune(whole_task, epochs=5, early_stopping_metric="accuracy")
    killed, calls = classifier(), [0]
    original = killed.model.training_step

    def interrupted(batch: Any, task: str) -> Any:
        calls[0] += killed.model.training
        if calls[0] == 14:  # 6 batches an epoch: in epoch 3, after epoch 2's checkpoint
            raise KeyboardInterrupt
        return original(batch, task)

    killed.model.training_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        finetune(killed, epochs=5, early_stopping_metric="accuracy", checkpoint_dir=tmp_path)
    # Another model object, as after a restart: everything comes from the checkpoint.
    resumed_task = classifier(seed=5)
    resumed = finetune(
        resumed_task, epochs=5, early_stopping_metric="accuracy", checkpoint_dir=tmp_path, resume=True
    )
    assert resumed.resumed_after_epoch == 2
    assert trajectory(resumed) == trajectory(whole) and len(resumed.metrics[0]) == 2
    assert same_state(state_of(resumed_task.model), state_of(whole_task.model))
    # A best accuracy cannot go on as a best loss.
    with pytest.raises(bpcore.InputError, match="early_stopping_metric") as caught:
        finetune(classifier(), epochs=6, checkpoint_dir=tmp_path, resume=True)
    assert caught.value.field == "resume"


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"early_stopping_metric": "acuracy"}, "early_stopping_metric", "['accuracy', 'f1_macro']"),
        ({"early_stopping_metric": "pearson_cosine"}, "early_stopping_metric", "no metric 'pearson_cosine'"),
        ({"early_stopping_metric": "-accuracy"}, "early_stopping_metric", "better when higher"),
        ({"early_stopping_metric": "loss"}, "early_stopping_metric", 'write "-loss"'),
        ({"early_stopping_metric": ""}, "early_stopping_metric", "a metric name"),
        ({"early_stopping_metric": 3}, "early_stopping_metric", "a metric name"),
        ({"early_stopping_metric": "accuracy", "metrics": False}, "early_stopping_metric", "needs metrics"),
        ({"metrics": "yes"}, "metrics", "true or false"),
    ],
)
def test_bad_metric_options_name_the_field_before_training(options, field, message):
    task = classifier()
    before = state_of(task.model)
    with pytest.raises(bpcore.InputError) as caught:
        finetune(task, **options)
    assert caught.value.field == field and message in str(caught.value)
    assert same_state(before, state_of(task.model))


def test_an_early_stopping_metric_without_metrics_is_refused():
    with pytest.raises(bpcore.InputError, match="needs metrics too") as caught:
        classifier().finetune(PARAMS, early_stopping_metric="accuracy", epochs=1)
    assert caught.value.field == "early_stopping_metric"


def test_the_metrics_of_other_variants_and_what_cannot_be_evaluated():
    torch.manual_seed(0)
    tv = bpcore.TextVectorisation(TinyTextModel())
    pairs = {
        "texts1": PARAMS["texts"][:20],
        "texts2": PARAMS["texts"][20:40],
        "similarity_scores": [0.5] * 20,
    }
    with pytest.raises(bpcore.InputError, match=r"\['pearson_cosine', 'spearman_cosine'\]") as caught:
        tv.finetune(pairs, metrics=True, early_stopping_metric="accuracy", epochs=1)
    assert caught.value.field == "early_stopping_metric"
    # Batches of the caller's own, which only the caller's step reads, cannot be evaluated.
    loader = DataLoader(list(range(8)), batch_size=4)
    with pytest.raises(bpcore.InputError, match="needs the validation examples") as caught:
        tv.finetune(pairs, metrics=True, train_dataloader=loader, step=lambda batch, index: None, epochs=1)
    assert caught.value.field == "metrics"
    # The loop itself computes metrics only with the function that computes them.
    from bpcore.training import fit

    with pytest.raises(bpcore.InputError, match="evaluate=") as caught:
        fit(tv.model, [1, 2], step=lambda batch, index: None, configure_optimizers=lambda: None, metrics=True)
    assert caught.value.field == "metrics"


# -- the command line and several processes ----------------------------------------------------


def test_the_command_line_sets_metrics_and_early_stopping_metric(tiny_plugin, tmp_path: Path, capsys):
    data = tmp_path / "train.jsonl"
    rows = [{"texts": text, "labels": label} for text, label in zip(PARAMS["texts"], PARAMS["labels"])]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    command = ["finetune", "text-classification", "--data", str(data), "--model", "tiny-text"]
    command += ["--epochs", "3", "--early-stopping-epochs", "0", "--seed", "0", "--quiet"]
    command += ["--set", "early_stopping_metric=accuracy"]
    assert main(command) == 2
    assert "early_stopping_metric: needs metrics too" in capsys.readouterr().err
    assert main([*command, "--set", "metrics=true", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["early_stopping_metric"] == "accuracy" and len(printed["epochs"]) == 3
    best = printed["epochs"][printed["best_epoch"] - 1]["metrics"]["accuracy"]
    assert best == max(epoch["metrics"]["accuracy"] for epoch in printed["epochs"])
    assert main([*command, "--set", "metrics=true"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == [
        "epoch",
        "train",
        "loss",
        "val",
        "loss",
        "accuracy",
        "f1_macro",
        "seconds",
    ]
    assert f"(accuracy {best:.4f})" in table


SCRIPT = """
import json, os, sys
sys.path.insert(0, TESTS_DIR)
import torch
from test_finetune_metrics import PARAMS
from tiny_models import TinyTextModel
import bpcore
import bpcore.evaluation.evaluate as evaluation

# Count the evaluations this process runs.
evaluations, score = [0], evaluation.score
def counted(*args, **kwargs):
    evaluations[0] += 1
    return score(*args, **kwargs)
evaluation.score = counted

torch.manual_seed(0)
history = bpcore.TextClassification(TinyTextModel()).finetune(
    # 48 training examples: whole batches of 8, which two processes share evenly.
    PARAMS, validation_split=(list(range(48)), list(range(48, 60))), epochs=4, batch_size=8, seed=0,
    learning_rate=0.003, early_stopping_epochs=0, metrics=True, early_stopping_metric="accuracy",
    progress=False,
)
with open(os.path.join(sys.argv[1], "rank" + os.environ.get("RANK", "0") + ".json"), "w") as out:
    json.dump({**history.as_dict(), "evaluations": evaluations[0]}, out)
import torch.distributed as dist
if dist.is_initialized():
    dist.barrier()
    dist.destroy_process_group()
sys.stdout.flush()
os._exit(0)  # torch's distributed threads can abort a rank at teardown, after the results are written
"""


@pytest.mark.slow
def test_two_processes_measure_once_and_agree(tmp_path: Path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.replace("TESTS_DIR", repr(str(TESTS_DIR))))
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "BPCORE_LOAD_PLUGINS": ""}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    for folder, launcher in (("one", [sys.executable]), ("two", launch)):
        (tmp_path / folder).mkdir()
        done = subprocess.run(
            [*launcher, str(script), str(tmp_path / folder)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    [one] = [json.loads(path.read_text()) for path in (tmp_path / "one").glob("rank*.json")]
    two = [json.loads(path.read_text()) for path in sorted((tmp_path / "two").glob("rank*.json"))]
    assert [history["num_processes"] for history in two] == [2, 2]
    # The main process measured, once an epoch; the other got its numbers, so both kept the same epoch.
    assert [history["evaluations"] for history in (one, *two)] == [4, 4, 0]
    metrics = [[epoch["metrics"] for epoch in history["epochs"]] for history in (one, *two)]
    assert metrics[1] == metrics[2] and two[0]["best_epoch"] == two[1]["best_epoch"]
    # The numbers a single process measures, of weights equal up to float rounding.
    assert [epoch["val_loss"] for epoch in two[0]["epochs"]] == pytest.approx(
        [epoch["val_loss"] for epoch in one["epochs"]], rel=1e-5
    )
    assert metrics[0] == metrics[1] and len(metrics[0]) == 4 and one["best_epoch"] == two[0]["best_epoch"]
