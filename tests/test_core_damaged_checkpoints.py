"""Resuming from damaged checkpoints (a full disk, a killed copy, an edited file).

A resume checks a checkpoint whole before using it: a damaged one is passed over, with a
warning naming it and what is wrong, for the one before it; when none is valid the run stops
with a bpcore error saying why, before any training and with the model untouched.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from core_helpers import same_state, state_of
from test_core_training import PAIR_PARAMS
from tiny_models import TinyTextModel

import bpcore
from bpcore.training import BpcoreWarning

SPLIT = (list(range(16)), list(range(16, 20)))


def pairs(dim: int | None = None) -> bpcore.TextVectorisation:
    torch.manual_seed(0)
    return bpcore.TextVectorisation(TinyTextModel(dim))


def run(task: bpcore.TextVectorisation, checkpoint_dir: Path, **options) -> bpcore.training.History:
    settings = {
        "validation_split": SPLIT,
        "epochs": 2,
        "batch_size": 4,
        "early_stopping_epochs": 0,
        "seed": 1,
        "progress": False,
        "checkpoint_dir": checkpoint_dir,
        # A schedule: its state is one more file a resume needs.
        "lr_scheduler": "linear",
        "warmup_ratio": 0.25,
    }
    return task.finetune(PAIR_PARAMS, **{**settings, **options})


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def edit_loop_state(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(checkpoint: Path) -> None:
        path = checkpoint / "loop-state.json"
        state = json.loads(path.read_text())
        change(state)
        path.write_text(json.dumps(state))

    return damage


def corrupt_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# (damage to a checkpoint folder, what the warning or error says about it)
DAMAGE = {
    "truncated model weights": (lambda c: truncate(c / "model.safetensors"), "model.safetensors is damaged"),
    "deleted best weights": (
        lambda c: (c / "best-weights.safetensors").unlink(),
        "best-weights.safetensors is missing",
    ),
    "epoch not a number": (
        edit_loop_state(lambda s: s.update(epoch="x")),
        '"epoch" must be an integer, got a string',
    ),
    "finished missing": (edit_loop_state(lambda s: s.pop("finished")), '"finished" is missing'),
    "history not an object": (
        edit_loop_state(lambda s: s.update(history="x")),
        '"history" must be an object, got a string',
    ),
    "history epochs damaged": (
        edit_loop_state(lambda s: s["history"]["epochs"][0].update(val_loss="low")),
        '"val_loss" must be a number',
    ),
    "loop state not JSON": (
        lambda c: (c / "loop-state.json").write_text('{"epoch": 2, "hist'),
        "not readable JSON",
    ),
    "truncated optimizer": (lambda c: truncate(c / "optimizer.bin"), "optimizer.bin is truncated or corrupt"),
    "corrupt random state": (
        lambda c: corrupt_middle(c / "random_states_0.pkl"),
        "random_states_0.pkl is corrupt",
    ),
    "deleted random state": (
        lambda c: (c / "random_states_0.pkl").unlink(),
        "random_states_0.pkl is missing",
    ),
    "deleted schedule": (
        lambda c: (c / "custom_checkpoint_0.pkl").unlink(),
        "custom_checkpoint_0.pkl is missing",
    ),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[bpcore.training.History, dict]:
    """A whole 2-epoch run, to compare resumed runs with."""
    task = pairs()
    history = run(task, tmp_path_factory.mktemp("whole"))
    return history, state_of(task.model)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_last_checkpoint_is_skipped_for_the_one_before(kind: str, tmp_path: Path, uninterrupted):
    expected, expected_weights = uninterrupted
    run(pairs(), tmp_path)
    damage, reason = DAMAGE[kind]
    damage(tmp_path / "epoch-2")

    task = pairs()
    with pytest.warns(BpcoreWarning, match="skipped the checkpoint") as caught:
        history = run(task, tmp_path, resume=True)
    [warning] = [w for w in caught if "skipped" in str(w.message)]
    assert "epoch-2" in str(warning.message) and reason in str(warning.message)
    # Resumed after epoch 1, it ends as the uninterrupted run did.
    assert history.resumed_after_epoch == 1
    assert history.val_loss == expected.val_loss and history.step_losses == expected.step_losses
    assert same_state(state_of(task.model), expected_weights)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_no_valid_checkpoint_is_a_bpcore_error_saying_what_is_wrong(kind: str, tmp_path: Path):
    run(pairs(), tmp_path, keep_checkpoints=1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch-2"]
    damage, reason = DAMAGE[kind]
    damage(tmp_path / "epoch-2")

    task = pairs()
    before = state_of(task.model)
    with pytest.raises(bpcore.InputError) as caught:
        run(task, tmp_path, resume=True)
    assert caught.value.field == "checkpoint_dir"
    assert "no valid checkpoint" in str(caught.value) and reason in str(caught.value)
    assert "epoch-2" in str(caught.value)
    assert same_state(state_of(task.model), before)


def test_a_folder_left_by_a_run_stopped_while_saving_is_passed_over(tmp_path: Path, uninterrupted):
    expected, _ = uninterrupted
    run(pairs(), tmp_path)
    (tmp_path / "epoch-2" / "loop-state.json").unlink()  # as when the run died before writing it
    with pytest.warns(BpcoreWarning, match=r"skipped the checkpoint .*epoch-2 \(incomplete"):
        history = run(pairs(), tmp_path, resume=True)
    assert history.resumed_after_epoch == 1 and history.val_loss == expected.val_loss
    # With nothing complete left, the run starts again from the beginning.
    for folder in tmp_path.iterdir():
        (folder / "loop-state.json").unlink(missing_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = run(pairs(), tmp_path, resume=True)
    assert history.resumed_after_epoch is None and history.val_loss == expected.val_loss
    assert any("starts from the beginning" in str(warning.message) for warning in caught)


def test_a_checkpoint_of_another_model_is_a_bpcore_error_and_leaves_the_model_alone(tmp_path: Path):
    run(pairs(), tmp_path)
    wider = pairs(dim=32)  # same data and options: only loading the weights can tell
    before = state_of(wider.model)
    with pytest.raises(bpcore.InputError, match="does not fit this model") as caught:
        run(wider, tmp_path, resume=True)
    assert caught.value.field == "checkpoint_dir"
    assert same_state(state_of(wider.model), before)


def test_a_run_early_stopping_ended_says_so_when_resumed_with_more_epochs(tmp_path: Path):
    def frozen(
        task,
    ):  # a learning rate of 0: epoch 2 is no better than epoch 1, so early stopping ends the run
        return {"configure_optimizers": lambda: torch.optim.SGD(task.model.parameters(), lr=0.0)}

    task = pairs()
    whole = run(task, tmp_path / "whole", epochs=4, early_stopping_epochs=1, **frozen(task))
    assert len(whole) == 2 and whole.stopped_early
    task = pairs()
    ended = run(task, tmp_path / "short", epochs=2, early_stopping_epochs=1, **frozen(task))
    assert len(ended) == 2 and not ended.stopped_early  # it ran all its epochs
    task = pairs()
    resumed = run(task, tmp_path / "short", epochs=4, early_stopping_epochs=1, resume=True, **frozen(task))
    assert len(resumed) == 2 and resumed.stopped_early == whole.stopped_early


def test_a_run_with_a_warm_up_of_steps_resumes_to_the_uninterrupted_end(tmp_path: Path):
    schedule = {"lr_scheduler": "constant", "warmup_ratio": None, "warmup_steps": 6}
    whole = pairs()
    expected = run(whole, tmp_path / "whole", **schedule)
    run(pairs(), tmp_path / "cut", epochs=1, **schedule)
    task = pairs()
    history = run(task, tmp_path / "cut", resume=True, **schedule)
    assert history.resumed_after_epoch == 1
    assert history.step_losses == expected.step_losses
    assert [e.learning_rate for e in history.epochs] == [e.learning_rate for e in expected.epochs]
    assert same_state(state_of(task.model), state_of(whole.model))
