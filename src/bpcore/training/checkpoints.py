"""Epoch-end checkpoints of a finetuning run, and finding the one to resume from.

A checkpoint is a folder ``epoch-N`` in the run's ``checkpoint_dir``: Accelerate's
``save_state`` (model, optimizer, learning-rate schedule, every process's random state) plus
the loop's own state (``loop-state.json``: history, early stopping, the run's settings) and the
best epoch's weights (``best-weights.safetensors``). ``loop-state.json`` is written last, so a
folder without it (a run killed while saving) is never resumed from.

Before resuming, a checkpoint is checked whole (:func:`resumable_checkpoint`): every field of
``loop-state.json`` and its type, and every file the resume reads (present, and not truncated
or corrupt). A damaged checkpoint (a full disk, a killed copy, an edited file) is passed over
for the one before it; when none is left, the error names each checkpoint and what is wrong.

A checkpoint holds pickles (Accelerate's optimizer and random states): resume only from
checkpoints your own runs wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bpcore.errors import InputError
from bpcore.training.history import History

if TYPE_CHECKING:
    import torch

LOOP_STATE = "loop-state.json"
BEST_WEIGHTS = "best-weights.safetensors"
_FOLDER = re.compile(r"epoch-(\d+)")
#: Accelerate's ``save_state`` file names (accelerate.utils.constants) for one model and optimizer.
MODEL_WEIGHTS, MODEL_PICKLE, OPTIMIZER = "model.safetensors", "pytorch_model.bin", "optimizer.bin"
#: A checkpoint folder that a run killed while saving left without its loop state.
INCOMPLETE = f"incomplete: no {LOOP_STATE} (a run stopped while saving it)"


class DamagedCheckpoint(Exception):
    """Why a checkpoint cannot be resumed from (internal: :func:`resumable_checkpoint` reports it)."""


def _numbered_folders(checkpoint_dir: str | os.PathLike[str]) -> list[Path]:
    """Every ``epoch-N`` folder in ``checkpoint_dir``, complete or not, oldest first."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), child)
        for child in folder.iterdir()
        if (match := _FOLDER.fullmatch(child.name)) and child.is_dir()
    ]
    return [path for _, path in sorted(found)]


def completed_checkpoints(checkpoint_dir: str | os.PathLike[str]) -> list[Path]:
    """The complete checkpoints (those with a loop state) in ``checkpoint_dir``, oldest first."""
    return [path for path in _numbered_folders(checkpoint_dir) if (path / LOOP_STATE).is_file()]


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> Path | None:
    checkpoints = completed_checkpoints(checkpoint_dir)
    return checkpoints[-1] if checkpoints else None


def resumable_checkpoint(
    checkpoint_dir: str | os.PathLike[str],
) -> tuple[tuple[Path, dict[str, Any]] | None, list[tuple[Path, str]]]:
    """The newest valid checkpoint and its loop state, and the newer ones passed over with the reason.

    The first part is None when ``checkpoint_dir`` holds no checkpoint, or only folders a run
    stopped while saving (the run then starts from the beginning). Raises
    :class:`~bpcore.InputError` (field ``checkpoint_dir``) when it holds checkpoints and all
    are damaged, naming each and what is wrong.

    Example::

        found, skipped = resumable_checkpoint("ckpt")
        for folder, reason in skipped:
            print(f"skipping {folder.name}: {reason}")
    """
    skipped: list[tuple[Path, str]] = []
    for checkpoint in reversed(_numbered_folders(checkpoint_dir)):
        try:
            loop_state = read_loop_state(checkpoint)
            check_files(checkpoint, loop_state)
        except DamagedCheckpoint as problem:
            skipped.append((checkpoint, str(problem)))
            continue
        return (checkpoint, loop_state), skipped
    damaged = [(path, reason) for path, reason in skipped if reason != INCOMPLETE]
    if damaged:
        listed = "; ".join(f"{path}: {reason}" for path, reason in damaged)
        raise InputError(
            f"no valid checkpoint to resume from in {checkpoint_dir} ({listed}); delete the damaged "
            "checkpoints to start the run afresh there, or give a new checkpoint_dir",
            field="checkpoint_dir",
        )
    return None, skipped


def read_loop_state(checkpoint: Path) -> dict[str, Any]:
    """``checkpoint``'s loop state, every field checked; raises :class:`DamagedCheckpoint` saying what is wrong."""
    path = checkpoint / LOOP_STATE
    if not path.is_file():
        raise DamagedCheckpoint(INCOMPLETE)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DamagedCheckpoint(f"{LOOP_STATE} is not readable JSON ({error})") from error
    _check_fields(state, _LOOP_FIELDS, LOOP_STATE)
    if state["epoch"] < 1 or state["epochs_without_gain"] < 0:
        raise DamagedCheckpoint(f'{LOOP_STATE}: "epoch" or "epochs_without_gain" is out of range')
    folder_epoch = _FOLDER.fullmatch(checkpoint.name)
    if folder_epoch and state["epoch"] != int(folder_epoch.group(1)):
        raise DamagedCheckpoint(
            f'{LOOP_STATE}: "epoch" is {state["epoch"]}, but the folder is {checkpoint.name}'
        )
    _check_fields(state["fingerprint"], _FINGERPRINT_FIELDS, f"{LOOP_STATE}: fingerprint")
    schedule = state["fingerprint"]["lr_scheduler"]
    steps = schedule[2:]  # the warm-up steps, when set
    if not (
        len(schedule) in (2, 3)
        and isinstance(schedule[0], str)
        and _is_number(schedule[1])
        and all(isinstance(step, int) and not isinstance(step, bool) and step > 0 for step in steps)
    ):
        raise DamagedCheckpoint(
            f'{LOOP_STATE}: fingerprint: "lr_scheduler" must be [name, warm-up ratio] or '
            f"[name, warm-up ratio, warm-up steps], got {schedule!r:.60}"
        )
    _check_history(state["history"], state["epoch"])
    return state


def check_files(checkpoint: Path, loop_state: dict[str, Any]) -> None:
    """Every file a resume reads from ``checkpoint`` is there and whole; else :class:`DamagedCheckpoint`."""
    model_file = MODEL_PICKLE if (checkpoint / MODEL_PICKLE).is_file() else MODEL_WEIGHTS
    torch_files = [OPTIMIZER]
    # Each process of the run saved its random state; a resume that cannot restore one does
    # not continue the run (Accelerate would go on silently with fresh random numbers).
    torch_files += [f"random_states_{index}.pkl" for index in range(loop_state["history"]["num_processes"])]
    schedule, *warmup = loop_state["fingerprint"]["lr_scheduler"]
    if schedule != "constant" or any(warmup):  # the loop registered its schedule with Accelerate
        torch_files.append("custom_checkpoint_0.pkl")
    for name in (model_file, BEST_WEIGHTS, *torch_files):
        path = checkpoint / name
        if not path.is_file():
            raise DamagedCheckpoint(f"{name} is missing")
        if name.endswith(".safetensors"):
            _check_safetensors(path)
        else:  # torch.save writes a zip archive with a checksum per record
            _check_zip(path)


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        # Opening checks the header and that the data covers the file exactly (no truncation).
        with safe_open(str(path), framework="pt") as opened:
            opened.keys()
    except Exception as error:  # safetensors raises its own SafetensorError and OSError
        raise DamagedCheckpoint(f"{path.name} is damaged ({error})") from error


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        raise DamagedCheckpoint(f"{path.name} is truncated or corrupt ({error})") from error
    if bad is not None:
        raise DamagedCheckpoint(f"{path.name} is corrupt (record {bad} fails its checksum)")


# -- the loop state's fields ----------------------------------------------------------------

_NUMBER = (int, float)
_INTEGER = ((int,), "an integer")
_FLOAT = (_NUMBER, "a number")
_LIST = ((list,), "a list")
_OBJECT = ((dict,), "an object")
_BOOL = ((bool,), "true or false")
Fields = dict[str, tuple[tuple[type, ...], str]]
_LOOP_FIELDS: Fields = {
    "epoch": _INTEGER,
    "history": _OBJECT,
    "best_loss": _FLOAT,
    "epochs_without_gain": _INTEGER,
    "finished": _BOOL,
    "fingerprint": _OBJECT,
}
_FINGERPRINT_FIELDS: Fields = {
    "examples": _INTEGER,
    "split": _LIST,
    "batch_size": _INTEGER,
    "gradient_accumulation_steps": _INTEGER,
    "lr_scheduler": _LIST,
}
# The fields a resume reads; the others (History's defaults) may be missing, never unknown.
_HISTORY_FIELDS: Fields = {
    "epochs": _LIST,
    "seed": _INTEGER,
    "num_processes": _INTEGER,
    "step_losses": _LIST,
    "stopped_early": _BOOL,
    "best_epoch": ((int, type(None)), "an integer or null"),
}
_EPOCH_FIELDS: Fields = {
    "epoch": _INTEGER,
    "train_loss": _FLOAT,
    "val_loss": _FLOAT,
    "seconds": _FLOAT,
    "learning_rate": ((*_NUMBER, type(None)), "a number or null"),
}


def _check_fields(value: Any, fields: Fields, where: str) -> None:
    if not isinstance(value, dict):
        raise DamagedCheckpoint(f"{where} must be an object, got {_json_type(value)}")
    for name, (types, expected) in fields.items():
        if name not in value:
            raise DamagedCheckpoint(f'{where}: "{name}" is missing')
        item = value[name]
        # JSON's true/false are Python bools, which are ints too: only a bool field takes them.
        if not isinstance(item, types) or (isinstance(item, bool) and bool not in types):
            raise DamagedCheckpoint(
                f'{where}: "{name}" must be {expected}, got {_json_type(item)} {item!r:.40}'
            )


def _check_history(history: dict[str, Any], epoch: int) -> None:
    where = f"{LOOP_STATE}: history"
    _check_fields(history, _HISTORY_FIELDS, where)
    unknown = set(history) - {field.name for field in attrs.fields(History)}
    if unknown:
        raise DamagedCheckpoint(f"{where} has unknown fields {sorted(unknown)}")
    records = history["epochs"]
    if len(records) != epoch:
        raise DamagedCheckpoint(f"{where} records {len(records)} epochs, not {epoch}")
    for number, record in enumerate(records, start=1):
        _check_fields(record, _EPOCH_FIELDS, f"{where}: epochs[{number - 1}]")
        if set(record) - set(_EPOCH_FIELDS) - {"metrics"}:
            raise DamagedCheckpoint(f"{where}: epochs[{number - 1}] has unknown fields")
        _check_metrics(record.get("metrics", {}), f"{where}: epochs[{number - 1}]: metrics")
    if not isinstance(history.get("early_stopping_metric", "-loss"), str):
        raise DamagedCheckpoint(f"{where}: early_stopping_metric must be a string")
    if not all(_is_number(loss) for loss in history["step_losses"]):
        raise DamagedCheckpoint(f"{where}: step_losses must be a list of numbers")
    if history["num_processes"] < 1:
        raise DamagedCheckpoint(f"{where}: num_processes must be at least 1")


def _check_metrics(metrics: Any, where: str) -> None:
    """An epoch's metrics (``metrics=True``; absent in runs without them): name → number or null."""
    if not isinstance(metrics, dict):
        raise DamagedCheckpoint(f"{where} must be an object, got {_json_type(metrics)}")
    if not all(value is None or _is_number(value) for value in metrics.values()):
        raise DamagedCheckpoint(f"{where} must map each metric name to a number")


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def checkpointed_seed(checkpoint_dir: str | os.PathLike[str] | None) -> int | None:
    """The seed of the run checkpointed in ``checkpoint_dir`` (a resumed run must reuse it).

    Read from the newest checkpoint whose loop state is valid (every checkpoint of a run holds
    its seed); None when there is none, and :func:`resumable_checkpoint` then says why.
    """
    if checkpoint_dir is None:
        return None
    for checkpoint in reversed(completed_checkpoints(checkpoint_dir)):
        try:
            return int(read_loop_state(checkpoint)["history"]["seed"])
        except DamagedCheckpoint:
            continue
    return None


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
