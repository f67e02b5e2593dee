"""A finetuning run killed after its first checkpoint resumes, in a new process, to the end the
uninterrupted run has: the same losses, learning rates and weights, bit for bit.

What a resume must carry over for an EfficientNet: the warm-up's step count (the core's schedule),
momentum, the BatchNorm statistics, the random state that the augmenting transforms and dropout
draw from, and the best weights so far. Each run is this file run as a script in its own
process, as a user's script would be; the killed one dies with SIGKILL (nothing flushed).

    python test_effnet_resume.py WEIGHTS OUT [--checkpoint-dir DIR] [--resume] [--die-at-step N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

EPOCHS = 3
#: The run's options: every run (uninterrupted, killed, resumed) trains the same way.
RUN = {"epochs": EPOCHS, "batch_size": 4, "validation_split": 0.25, "seed": 5, "early_stopping_epochs": 0}
# 12 training images in batches of 4 and 1 validation batch: 4 steps an epoch; the 6th is in
# epoch 2, after epoch 1's checkpoint (and after one more optimizer step the checkpoint lacks).
DIE_AT_STEP = 6


def finetune(
    weights: str, out: Path, checkpoint_dir: str | None, resume: bool, die_at_step: int | None
) -> None:
    """The user's script: finetune a tiny EfficientNet with augmentation; write its history and weights."""
    import torch
    from safetensors.torch import save_file
    from tiny_effnet import IMAGE_SIZE, TIMM_MODEL, single_label_data

    import bpcore
    from bp_effnet import EfficientNet

    torch.set_num_threads(1)
    model = EfficientNet(TIMM_MODEL, pretrained=weights, image_size=IMAGE_SIZE, augment=True)
    if die_at_step:
        steps, original = [0], model.training_step

        def training_step(batch, task="image-classification"):
            steps[0] += 1
            if steps[0] == die_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(batch, task)

        model.training_step = training_step  # type: ignore[method-assign]
    images, labels = single_label_data(6, seed=1)
    history = bpcore.ImageClassification(model).finetune(
        {"images": images[:16], "labels": labels[:16]},
        **RUN,
        progress=False,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history.as_dict()))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "weights.safetensors"))


def start_script(weights: Path, out: Path, *args: str | Path) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BPCORE_LOAD_PLUGINS": "", "ACCELERATE_USE_CPU": "true"}
    return subprocess.Popen(
        [sys.executable, __file__, str(weights), str(out), *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=300)
    return process.returncode, stderr[-3000:]


def outcome(folder: Path) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    history = json.loads((folder / "history.json").read_text())
    for record in history["epochs"]:
        del record["seconds"]  # wall-clock time, the one thing a resumed run cannot repeat
    return history, load_file(str(folder / "weights.safetensors"))


@pytest.mark.slow
def test_a_killed_run_resumes_in_a_new_process_to_the_same_weights_and_history(
    weights_file: Path, tmp_path: Path
) -> None:
    import torch

    checkpoints = tmp_path / "checkpoints"
    killed = start_script(
        weights_file, tmp_path / "killed", "--checkpoint-dir", checkpoints, "--die-at-step", DIE_AT_STEP
    )
    # Meanwhile, the uninterrupted run (here: the test process is as fresh a process as any).
    finetune(str(weights_file), tmp_path / "whole", None, False, None)
    returncode, stderr = finish(killed)
    assert returncode == -signal.SIGKILL and not (tmp_path / "killed").exists(), stderr
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch-1"]
    returncode, stderr = finish(
        start_script(weights_file, tmp_path / "resumed", "--checkpoint-dir", checkpoints, "--resume")
    )
    assert returncode == 0, stderr

    history, weights = outcome(tmp_path / "resumed")
    expected, expected_weights = outcome(tmp_path / "whole")
    assert history.pop("resumed_after_epoch") == 1 and expected.pop("resumed_after_epoch") is None
    # Losses, learning rates (the warm-up went on), best epoch and every batch's loss.
    assert history == expected
    assert weights.keys() == expected_weights.keys()
    assert [key for key in weights if not torch.equal(weights[key], expected_weights[key])] == []


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-at-step", type=int)
    arguments = parser.parse_args()
    finetune(
        arguments.weights, arguments.out, arguments.checkpoint_dir, arguments.resume, arguments.die_at_step
    )
