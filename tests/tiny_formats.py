"""A "foreign" model folder format for the core tests, and the plugins that recognise (or decline) it.

A tiny-format folder holds ``tiny-format.json`` and the weights; no ``config.json``, so bpcore's
own loading does not apply and only a recogniser can make it a model. Recognisers are named by
``"tiny_formats:<function>"`` in the plugins below, as a plugin names its own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import bpcore

MARKER = "tiny-format.json"


def write_tiny_format(model: Any, folder: Path) -> Path:
    """Save ``model`` with bpcore, then turn the folder into a tiny-format one (its config under another name)."""
    saved = Path(bpcore.save(model, path=folder.with_name(folder.name + "-bpcore")))
    config = json.loads((saved / "config.json").read_text())
    folder.mkdir(parents=True)
    shutil.copy(saved / config["model"]["weights"], folder / config["model"]["weights"])
    (folder / MARKER).write_text(json.dumps({"model": config["model"], "tasks": config["tasks"]}))
    shutil.rmtree(saved)
    return folder


def _marker(path: Path) -> dict[str, Any] | None:
    marker = path / MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


def recognise_tiny(path: Path, task: str | None) -> dict[str, Any] | None:
    found = _marker(path)
    if found is None:
        return None
    return {"class": "tiny_models:TinyTextModel", "model": found["model"], "tasks": found["tasks"]}


def recognise_tiny_for_classification(path: Path, task: str | None) -> dict[str, Any] | None:
    """Claims the same folders, as a classifier only: the task decides between it and :func:`recognise_tiny`."""
    found = _marker(path)
    if found is None:
        return None
    return {
        "class": "tiny_models:TinyTextModel",
        "model": found["model"],
        "tasks": ["text-classification"],
        "name": "tiny-classifier",
        "description": "read by the classification format",
    }


def decline(path: Path, task: str | None) -> None:
    return None


def crash(path: Path, task: str | None) -> None:
    raise RuntimeError("this recogniser is broken")


def refuse(path: Path, task: str | None) -> None:
    if _marker(path) is not None:
        raise bpcore.ModelLoadError(f"{path} is a tiny-format folder of a version this plugin cannot read")


def unregistered_class(path: Path, task: str | None) -> dict[str, Any] | None:
    found = _marker(path)
    if found is None:
        return None
    return {"class": "tiny_models:VocabModel", "model": found["model"], "tasks": found["tasks"]}


class FormatPlugin:
    """A plugin with one folder format, whose recogniser is ``tiny_formats:<recogniser>``."""

    def __init__(self, recogniser: str, name: str = "tiny-format", description: str = "a tiny-format folder"):
        self.recogniser, self.name, self.description = recogniser, name, description

    @bpcore.hookimpl
    def register_folder_formats(self, register: Any) -> None:
        register(name=self.name, recognise=f"tiny_formats:{self.recogniser}", description=self.description)
