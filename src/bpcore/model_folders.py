"""Plain model folders: a path that is no bpcore-saved folder, recognised by a plugin's folder format.

``bpcore.QA("/models/my-t5")`` with a folder ``save_pretrained`` wrote, or
``bpcore.TextVectorisation("/models/minilm")`` with one ``SentenceTransformer.save`` wrote:
each plugin registers the formats it loads (the ``register_folder_formats`` hook), and
:func:`recognise` asks each format's recogniser whether the path is one of its models. A
recogniser looks at file names and JSON only (it imports no torch) and answers what a
bpcore-saved ``config.json`` would say: the model class (one the plugin registers), the
configuration its ``from_saved`` reads, and the tasks the model serves. :func:`bpcore.load`
then builds the model the way it loads a saved folder: from inside the folder only, running
nothing from it (see SECURITY.md).

A format whose model does not serve the task asked for declines; two formats left claiming
the path is an error naming both.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from bpcore.errors import BpcoreError, ModelLoadError, TaskNotSupportedError
from bpcore.naming import NAME_PATTERN
from bpcore.plugins.registry import failed_plugins_note, get_registry
from bpcore.plugins.specs import FolderFormat, import_object
from bpcore.tasknames import TASKS

#: What a recogniser's answer may hold.
ANSWER_KEYS = frozenset({"class", "model", "tasks", "name", "description", "details"})
#: How the error names what bpcore reads itself.
SAVED_FORMAT = "a folder saved with bpcore.save (config.json naming its model class)"


@attrs.frozen
class Recognised:
    """What a plugin's folder format makes of a path: load ``model_class`` with ``config`` from ``root``."""

    format: FolderFormat
    model_class: str
    config: Mapping[str, Any]
    tasks: tuple[str, ...]
    #: The folder the model's files are named relative to (a file's own folder for a single file).
    root: Path
    name: str | None = None
    description: str | None = None
    details: Mapping[str, Any] | None = None


def recognise(path: Path, task: str | None = None, why_not_saved: str = "") -> Recognised:
    """The one format that recognises ``path`` (and serves ``task``, when given).

    Raises :class:`~bpcore.ModelLoadError` when none does (naming the formats bpcore
    understands) or when two do, and :class:`~bpcore.TaskNotSupportedError` when the path's
    model does not serve ``task``.
    """
    found: list[Recognised] = []
    other_tasks: list[Recognised] = []
    refused: list[BpcoreError] = []
    broken: list[str] = []
    for folder_format in get_registry().folder_formats:
        try:
            answer = import_object(folder_format.recognise)(path, task)
            recognised = None if answer is None else _checked(answer, folder_format, path)
        except BpcoreError as error:  # the plugin's format, but a folder it cannot load
            refused.append(error)
            continue
        # One plugin's bug must not hide the others' formats, not even a sys.exit() in a recogniser.
        except (Exception, SystemExit) as error:
            broken.append(f"{folder_format.label()} failed ({type(error).__name__}: {error})")
            continue
        if recognised is not None:
            (found if task is None or task in recognised.tasks else other_tasks).append(recognised)
    if len(found) == 1:
        return found[0]
    if found:
        raise ModelLoadError(_ambiguous(path, task, found))
    if refused:
        raise refused[0]
    if other_tasks:
        first = other_tasks[0]
        raise TaskNotSupportedError(
            f"{path} is a {first.format.name} model ({first.format.plugin}) for {list(first.tasks)}, not {task!r}"
        )
    raise ModelLoadError(not_understood(path, why_not_saved, broken))


def not_understood(path: Path, why_not_saved: str = "", broken: list[str] | None = None) -> str:
    """The error for a path no format recognises: what bpcore and its plugins load instead."""
    formats = [SAVED_FORMAT] + [
        f"{folder_format.description} ({folder_format.plugin})"
        for folder_format in get_registry().folder_formats
    ]
    message = (
        f"{path} is no model bpcore can load: it is not a folder saved with bpcore.save"
        f"{' (' + why_not_saved + ')' if why_not_saved else ''}, and no installed plugin recognises it. "
        f"bpcore loads {'; '.join(formats)}"
    )
    if broken:
        message += f" (recognisers that failed: {'; '.join(broken)})"
    return message + failed_plugins_note()


def _ambiguous(path: Path, task: str | None, found: list[Recognised]) -> str:
    claims = "; ".join(
        f"{item.format.label()} as {item.model_class} for {list(item.tasks)}" for item in found
    )
    hint = (
        "name the task: bpcore.load(path, task=...), or a task such as bpcore.QA(path)"
        if task is None
        else "build the model class you mean with the folder yourself"
    )
    return f"{path} is recognised by several plugins ({claims}); {hint}"


def _checked(answer: Any, folder_format: FolderFormat, path: Path) -> Recognised:
    """A recogniser's answer as a :class:`Recognised`; a malformed one is the plugin's bug (not a BpcoreError)."""
    where = f"{folder_format.recognise} answered"
    if not isinstance(answer, Mapping):
        raise TypeError(f"{where} {type(answer).__name__}, not a dict or None")
    unknown = sorted(set(answer) - ANSWER_KEYS)
    model_class, config, tasks = answer.get("class"), answer.get("model", {}), answer.get("tasks")
    name = answer.get("name")
    problems = [
        f"unknown keys {unknown}" if unknown else "",
        "" if isinstance(model_class, str) and model_class.count(":") == 1 else f"class {model_class!r}",
        "" if isinstance(config, Mapping) else "a model config that is not a dict",
        "" if _task_list(tasks) else f"tasks {tasks!r}",
        "" if name is None or (isinstance(name, str) and NAME_PATTERN.match(name)) else f"name {name!r}",
    ]
    if any(problems):
        raise TypeError(f"{where} with {', '.join(p for p in problems if p)}")
    return Recognised(
        format=folder_format,
        model_class=str(model_class),
        config=dict(config),
        tasks=tuple(tasks),  # type: ignore[arg-type]
        root=path if path.is_dir() else path.parent,
        name=name,
        description=answer.get("description"),
        details=answer.get("details"),
    )


def _task_list(tasks: Any) -> bool:
    return isinstance(tasks, (list, tuple)) and bool(tasks) and all(task in TASKS for task in tasks)
