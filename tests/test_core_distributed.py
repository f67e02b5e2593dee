"""Scale-out: the same finetuning script on one process and on two (Accelerate over torch.distributed,
gloo on CPU) ends alike, and a run killed mid-epoch resumes from its checkpoint to the same end.

The script (``scale_script.py``) is what a user would write; it runs as a subprocess, under
``torchrun`` for two processes, as the README's "Scaling out" says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from core_helpers import TESTS_DIR
from safetensors.torch import load_file

# Two processes per test, each loading torch and a model: the slowest core tests.
pytestmark = pytest.mark.slow

SCRIPT = TESTS_DIR / "scale_script.py"
ENV = {"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "BPCORE_LOAD_PLUGINS": ""}


def run_script(*args: str | Path, processes: int = 1) -> subprocess.CompletedProcess[str]:
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    env = {**os.environ, **ENV}
    return subprocess.run(
        [*launcher, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def results(folder: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    histories = [json.loads(path.read_text()) for path in sorted(folder.glob("rank*.json"))]
    return histories, load_file(str(folder / "weights.safetensors"))


def losses(history: dict) -> list[float]:
    """Each epoch's train and validation loss, in one flat list."""
    return [loss for epoch in history["epochs"] for loss in (epoch["train_loss"], epoch["val_loss"])]


@pytest.mark.parametrize("variant", ["plain", "triplet"])
def test_two_processes_end_as_one_does(variant: str, tmp_path: Path) -> None:
    single, double = tmp_path / "one", tmp_path / "two"
    for folder, processes in ((single, 1), (double, 2)):
        result = run_script(variant, folder, processes=processes)
        assert result.returncode == 0, result.stderr[-3000:]
    [one], one_weights = results(single)
    two_histories, two_weights = results(double)
    # Two processes really ran, and both finished with the same history.
    assert [history["num_processes"] for history in two_histories] == [2, 2]
    assert losses(two_histories[0]) == losses(two_histories[1])
    # The same validation losses and weights as one process, up to float rounding.
    assert losses(two_histories[0]) == pytest.approx(losses(one), rel=1e-5)
    assert one["best_epoch"] == two_histories[0]["best_epoch"]
    for key, weight in one_weights.items():
        torch.testing.assert_close(two_weights[key], weight, rtol=1e-4, atol=1e-5)
    assert one["epochs"][-1]["val_loss"] < one["epochs"][0]["val_loss"]


@pytest.mark.parametrize("variant", ["plain", "triplet"])
def test_a_killed_run_resumes_to_the_same_weights_and_history(variant: str, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    # Each epoch runs 4 (plain) or 3+ (triplet) steps: the 6th is in epoch 2, after epoch 1's checkpoint.
    killed = run_script(
        variant, tmp_path / "killed", "--checkpoint-dir", checkpoints, "--die-after-batches", 6
    )
    assert killed.returncode != 0 and not (tmp_path / "killed").exists()
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch-1"]
    resumed = run_script(variant, tmp_path / "resumed", "--checkpoint-dir", checkpoints, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    uninterrupted = run_script(variant, tmp_path / "whole")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    [history], weights = results(tmp_path / "resumed")
    [expected], expected_weights = results(tmp_path / "whole")
    assert history["resumed_after_epoch"] == 1 and expected["resumed_after_epoch"] is None
    assert losses(history) == losses(expected) and history["step_losses"] == expected["step_losses"]
    assert history["best_epoch"] == expected["best_epoch"]
    assert weights.keys() == expected_weights.keys()
    assert all(torch.equal(weights[key], expected_weights[key]) for key in weights)
    # Only the last two checkpoints are kept.
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch-3", "epoch-4"]
