"""The same finetuning script runs unchanged on two processes (Accelerate over torch.distributed, gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from core_helpers import TESTS_DIR

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {tests!r})
    import torch
    import bpcore
    from tiny_models import TinyTextModel

    torch.manual_seed(0)
    tc = bpcore.TextClassification(TinyTextModel())
    texts = ["parliament passed the bill", "the senate votes", "a physics paper", "the telescope saw",
             "the film won awards", "a comedy movie", "the minister resigned", "lab experiment on cells"]
    labels = ["politics", "politics", "science", "science", "film", "film", "politics", "science"]
    history = tc.finetune({{"texts": texts, "labels": labels}}, epochs=4, early_stopping_epochs=0,
                          batch_size=2, validation_split=0.25, seed=3)
    weights = sum(float(p.double().sum()) for p in tc.model.parameters())
    # One file per process: their stdout shares one pipe and lines can interleave.
    with open(os.path.join({out!r}, "rank" + os.environ["RANK"] + ".json"), "w") as out:
        json.dump({{"rank": os.environ["RANK"], "world": os.environ.get("WORLD_SIZE"),
                   "train": history.train_loss, "val": history.val_loss, "weights": weights}}, out)
    """
)


def test_finetuning_runs_unchanged_on_two_processes(tmp_path: Path) -> None:
    script = tmp_path / "finetune.py"
    script.write_text(SCRIPT.format(tests=str(TESTS_DIR), out=str(tmp_path)))
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "BPCORE_LOAD_PLUGINS": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run([*command, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("rank*.json"))]
    assert sorted(run["rank"] for run in runs) == ["0", "1"] and {run["world"] for run in runs} == {"2"}
    first, second = runs
    # Losses are gathered across processes and gradients are averaged, so both ranks agree exactly.
    assert first["train"] == second["train"] and first["val"] == second["val"]
    assert abs(first["weights"] - second["weights"]) < 1e-6
    assert first["train"][-1] < first["train"][0]
