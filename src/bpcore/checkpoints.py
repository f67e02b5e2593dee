"""Epoch-end checkpoints of a finetuning run, and finding the one to resume from.

A checkpoint is a folder ``epoch-N`` in the run's ``checkpoint_dir``: Accelerate's
``save_state`` (model, optimizer, learning-rate schedule, every process's random state) plus
the loop's own state (``loop-state.json``: history, early stopping, the run's settings) and the
best epoch's weights (``best-weights.safetensors``). ``loop-state.json`` is written last, so a
folder without it (a run killed while saving) is never resumed from.

A checkpoint holds pickles (Accelerate's optimizer and random states): resume only from
checkpoints your own runs wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpcore.errors import InputError

if TYPE_CHECKING:
    import torch

LOOP_STATE = "loop-state.json"
BEST_WEIGHTS = "best-weights.safetensors"
_FOLDER = re.compile(r"epoch-(\d+)")


def completed_checkpoints(checkpoint_dir: str | os.PathLike[str]) -> list[Path]:
    """The complete checkpoints in ``checkpoint_dir``, oldest first."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _FOLDER.fullmatch(child.name)
        if match and (child / LOOP_STATE).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> Path | None:
    checkpoints = completed_checkpoints(checkpoint_dir)
    return checkpoints[-1] if checkpoints else None


def read_loop_state(checkpoint: Path) -> dict[str, Any]:
    try:
        state = json.loads((checkpoint / LOOP_STATE).read_text())
    except (OSError, ValueError) as error:
        raise InputError(
            f"{checkpoint} is not a readable checkpoint ({error})", field="checkpoint_dir"
        ) from error
    if not isinstance(state, dict) or "history" not in state or "epoch" not in state:
        raise InputError(f"{checkpoint / LOOP_STATE} is not a bpcore checkpoint", field="checkpoint_dir")
    return state


def checkpointed_seed(checkpoint_dir: str | os.PathLike[str] | None) -> int | None:
    """The seed of the run checkpointed in ``checkpoint_dir`` (a resumed run must reuse it)."""
    if checkpoint_dir is None:
        return None
    checkpoint = latest_checkpoint(checkpoint_dir)
    if checkpoint is None:
        return None
    seed = read_loop_state(checkpoint)["history"].get("seed")
    return seed if isinstance(seed, int) else None


def save_checkpoint(
    accelerator: Any,
    checkpoint_dir: str | os.PathLike[str],
    epoch: int,
    loop_state: dict[str, Any],
    best_state: dict[str, torch.Tensor],
    keep: int | None,
) -> Path:
    """Write the checkpoint of ``epoch`` (on every process: each saves its random state); prune old ones."""
    from safetensors.torch import save_file

    folder = Path(checkpoint_dir) / f"epoch-{epoch}"
    if accelerator.is_main_process and folder.exists():  # left by a run killed while saving
        shutil.rmtree(folder)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        save_file({key: value.contiguous() for key, value in best_state.items()}, str(folder / BEST_WEIGHTS))
        temporary = folder / f"{LOOP_STATE}.partial"
        temporary.write_text(json.dumps(loop_state, indent=1))
        os.replace(temporary, folder / LOOP_STATE)
        if keep is not None:
            for old in completed_checkpoints(checkpoint_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return folder


def load_best_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(checkpoint / BEST_WEIGHTS))
