"""Behaviour the rest of the suite would let break unnoticed (issue 22, part 4): each test here
failed with a realistic bug seeded into a copy of the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_core_training import PAIR_PARAMS
from tiny_models import TinyTextModel

import bpcore
from bpcore.cli import main
from bpcore.training.samplers import shuffled_batches

pytestmark = pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")

# 16 training examples, 4 for validation.
SPLIT = (list(range(16)), list(range(16, 20)))
SCORES = PAIR_PARAMS["similarity_scores"]  # each pair's score is its own: it names the example


def pairs(seed: int = 0) -> bpcore.TextVectorisation:
    torch.manual_seed(seed)
    return bpcore.TextVectorisation(TinyTextModel())


# -- shuffling: a new order every epoch ----------------------------------------------------------


def test_shuffled_batches_are_a_new_order_each_epoch_and_the_same_for_the_same_epoch():
    plans = [shuffled_batches(20, 4, seed=7, epoch=epoch) for epoch in range(4)]
    for plan in plans:
        assert sorted(index for batch in plan for index in batch) == list(range(20))
        assert [len(batch) for batch in plan] == [4] * 5
    orders = [[index for batch in plan for index in batch] for plan in plans]
    assert len({tuple(order) for order in orders}) == 4, "two epochs share a batch order"
    assert shuffled_batches(20, 4, seed=7, epoch=2) == plans[2]  # a resumed run sees the same batches
    assert shuffled_batches(20, 4, seed=8, epoch=2) != plans[2]


def test_finetuning_sees_the_training_examples_in_a_new_order_each_epoch():
    task = pairs()
    seen: list[list[float]] = []

    def step(batch, batch_idx):
        if task.model.training:
            seen.append([round(float(target), 2) for target in batch["targets"]])
        return task.step_cosine(batch, batch_idx)

    task.finetune(
        PAIR_PARAMS,
        validation_split=SPLIT,
        epochs=3,
        batch_size=4,
        early_stopping_epochs=0,
        seed=1,
        progress=False,
        step=step,
    )
    epochs = [seen[i : i + 4] for i in range(0, 12, 4)]
    assert len(seen) == 12
    for batches in epochs:
        assert sorted(score for batch in batches for score in batch) == sorted(SCORES[:16])
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2] and epochs[0] != epochs[2]


# -- the learning-rate schedule counts optimizer steps, not batches ------------------------------


def test_linear_decay_reaches_zero_at_the_last_optimizer_step_with_accumulation():
    task = pairs()
    # 16 examples in batches of 4, two batches per optimizer step: 2 steps an epoch, 8 in all.
    history = task.finetune(
        PAIR_PARAMS,
        validation_split=SPLIT,
        epochs=4,
        batch_size=4,
        gradient_accumulation_steps=2,
        lr_scheduler="linear",
        warmup_ratio=0.25,
        early_stopping_epochs=0,
        seed=1,
        progress=False,
    )
    assert history.gradient_accumulation_steps == 2 and len(history.step_losses) == 16
    rates = [record.learning_rate for record in history.epochs]
    # Warm-up takes the first 2 optimizer steps (epoch 1) to the peak, 5e-2 (the tiny model's rate).
    assert rates[0] == pytest.approx(5e-2)
    assert rates == sorted(rates, reverse=True)
    # Down to 0 at the last step, and not before it.
    assert rates[-1] == pytest.approx(0.0, abs=1e-12) and rates[-2] > 1e-3, rates


# -- stopped early: only when epochs were left -----------------------------------------------------


def climbing(task: bpcore.TextVectorisation):
    """An optimizer that climbs the loss: every epoch after the first validates worse."""
    return lambda: torch.optim.SGD(task.model.parameters(), lr=5.0, maximize=True)


@pytest.mark.parametrize(("epochs", "ran", "stopped"), [(3, 3, False), (5, 3, True)])
def test_stopped_early_only_when_epochs_were_left(epochs, ran, stopped):
    task = pairs()
    history = task.finetune(
        PAIR_PARAMS,
        validation_split=SPLIT,
        epochs=epochs,
        early_stopping_epochs=2,
        batch_size=4,
        seed=3,
        progress=False,
        configure_optimizers=climbing(task),
    )
    assert history.best_epoch == 1 and history.val_loss[0] < min(history.val_loss[1:])
    # With 3 epochs the patience of 2 runs out in the last one: every epoch ran, nothing stopped early.
    assert len(history) == ran and history.stopped_early is stopped


class ClimbingTextModel(TinyTextModel):
    """A tiny text model whose own optimizer climbs the loss."""

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=5.0, maximize=True)


class ClimbingPlugin:
    @bpcore.hookimpl
    def register_models(self, register):
        register(
            name="tiny-climbing",
            factory=f"{__name__}:ClimbingTextModel",
            tasks=["text-classification"],
            finetunable=["text-classification"],
        )


@pytest.fixture
def climbing_plugin():
    name = bpcore.register_plugin(ClimbingPlugin(), name="climbing-plugin")
    try:
        yield
    finally:
        bpcore.unregister_plugin(name)


def summary_facts(out: str) -> tuple[int, dict[str, str]]:
    """The number of epoch rows in ``bpcore finetune``'s summary, and its ``key: value`` lines."""
    table, _, tail = out.partition("\n\n")
    return len(table.splitlines()) - 1, dict(line.split(": ", 1) for line in tail.splitlines())


@pytest.mark.parametrize(("epochs", "ran", "stopped"), [("3", 3, "no"), ("5", 3, "yes, after epoch 3")])
def test_the_cli_says_stopped_early_only_when_epochs_were_left(
    climbing_plugin, tmp_path, capsys, epochs, ran, stopped
):
    from test_core_training import CLASSIFICATION

    data = tmp_path / "train.jsonl"
    rows = zip(CLASSIFICATION["texts"], CLASSIFICATION["labels"])
    data.write_text("".join(json.dumps({"texts": t, "labels": label}) + "\n" for t, label in rows))
    torch.manual_seed(0)
    code = main(
        ["finetune", "text-classification", "--data", str(data), "--model", "tiny-climbing",
         "--epochs", epochs, "--early-stopping-epochs", "2", "--batch-size", "4", "--seed", "3",
         "--validation-split", "0.25", "--quiet"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    count, facts = summary_facts(out)
    assert facts["best epoch"].startswith("1 ")
    assert count == ran and facts["stopped early"] == stopped


# -- a saved folder with a symlink to one of its own files ----------------------------------------


@pytest.fixture
def saved(tmp_path, seeded) -> Path:
    return Path(bpcore.save(TinyTextModel(name="saved-tiny"), path=tmp_path / "saved-tiny"))


def reason(error: pytest.ExceptionInfo[BaseException], folder: Path) -> str:
    """The refusal with the folder's location taken out: what is wrong, never where it is."""
    return str(error.value).replace(str(folder.parent), "<tmp>")


def test_a_symlink_to_a_file_inside_the_folder_is_refused(saved):
    # The model would load fine through it; the rule is "no symlinks", not "no symlinks leaving".
    (saved / "extra.safetensors").symlink_to("model.safetensors")
    with pytest.raises(bpcore.ModelLoadError) as error:
        bpcore.load(saved)
    assert "extra.safetensors is a symlink" in reason(error, saved)


def test_weights_reached_through_a_symlink_to_a_subfolder_are_refused(saved):
    (saved / "weights").mkdir()
    (saved / "model.safetensors").rename(saved / "weights" / "real.safetensors")
    (saved / "model.safetensors").symlink_to(Path("weights") / "real.safetensors")
    with pytest.raises(bpcore.ModelLoadError) as error:
        bpcore.load(saved)
    assert "model.safetensors is a symlink" in reason(error, saved)
    (saved / "model.safetensors").unlink()
    (saved / "weights" / "real.safetensors").rename(saved / "model.safetensors")
    (saved / "weights" / "link").symlink_to(saved / "config.json")  # absolute, and deeper down
    with pytest.raises(bpcore.ModelLoadError) as error:
        bpcore.load(saved)
    assert f"{Path('weights', 'link')} is a symlink" in reason(error, saved)
