"""Saving and loading models: a folder with ``config.json``, safetensors weights and ``requirements.txt``.

Loading never unpickles unless asked to (``trust_pickle=True``), because unpickling runs code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bpcore.errors import BpcoreError, InputError, ModelLoadError, ModelNotFoundError, UnsafeLoadError
from bpcore.naming import check_model_name

CONFIG_FILE = "config.json"
PICKLE_FILE = "model.bin"
REQUIREMENTS_FILE = "requirements.txt"
FORMAT_VERSION = 1


def home() -> Path:
    """Where models are saved by name: ``$BPCORE_HOME`` or ``~/.cache/bpcore``."""
    return Path(os.environ.get("BPCORE_HOME") or Path.home() / ".cache" / "bpcore")


def find_saved_model(name_or_path: str | os.PathLike[str]) -> Path | None:
    """The folder of a saved model given its path or its name under :func:`home`, if there is one."""
    path = Path(name_or_path).expanduser()
    if (path / CONFIG_FILE).is_file():
        return path
    if isinstance(name_or_path, str) and re.fullmatch(r"[a-z0-9_-]{3,100}", name_or_path):
        named = home() / name_or_path
        if (named / CONFIG_FILE).is_file():
            return named
    return None


def _class_path(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def _distributions_of(package: str) -> list[str]:
    """The distributions that install ``package`` (a top-level import name)."""
    import importlib_metadata

    # Plugins are found by their entry points: cheap, and right for editable installs, whose
    # file lists hold only a .pth file and so hide the package from packages_distributions().
    from_plugins = {
        entry_point.dist.name
        for entry_point in importlib_metadata.entry_points(group="bpcore")
        if entry_point.dist is not None and entry_point.module.split(".")[0] == package
    }
    return sorted(from_plugins) or importlib_metadata.packages_distributions().get(package, [])


def requirements_for(model: Any) -> list[str]:
    """Exact versions of bpcore, torch, the distribution providing the model's class and what it needs."""
    import importlib_metadata
    from packaging.requirements import Requirement

    top_level = type(model).__module__.split(".")[0]
    wanted = ["bpcore", "torch", *_distributions_of(top_level)]
    pins: dict[str, str] = {}
    for name in wanted:
        try:
            dist = importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            continue
        pins[dist.name.lower()] = dist.version
        if name in ("bpcore", "torch"):
            continue
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                pins[requirement.name.lower()] = importlib_metadata.version(requirement.name)
            except importlib_metadata.PackageNotFoundError:
                pass
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def save(
    model: Any,
    name: str | None = None,
    description: str | None = None,
    tasks: Sequence[str] | None = None,
    details: Mapping[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    pickle: bool = False,
    overwrite: bool = True,
) -> Path:
    """Save ``model`` to ``path``, or to ``<home>/<name>``; return the folder.

    The folder holds ``config.json`` (name, description, tasks, details, and how to rebuild
    the model), the weights as safetensors and ``requirements.txt``. With ``pickle=True`` a
    dill pickle ``model.bin`` is written as well. The save is atomic: a half-written save
    never replaces a good one.

    Example::

        bpcore.save(model, "my-model", description="Predicts sentiment")
        model = bpcore.load("my-model")
    """
    from bpcore.models.base import BaseModel

    name = name or getattr(model, "name", None)
    if name is None and path is None:
        raise InputError("give the model a name or a path to save it to", field="name")
    if name is not None:
        check_model_name(name)
    target = Path(path).expanduser() if path is not None else home() / name  # type: ignore[operator]
    if target.exists() and not overwrite:
        raise InputError(f"{target} already exists; pass overwrite=True to replace it", field="path")
    tasks = list(tasks if tasks is not None else getattr(model, "tasks", []) or [])
    description = description if description is not None else getattr(model, "description", "") or ""
    details = dict(details if details is not None else getattr(model, "details", {}) or {})
    try:
        json.dumps(details)
    except (TypeError, ValueError) as error:
        raise InputError(f"must be JSON-serialisable ({error})", field="details") from None

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        config: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "description": description,
            "tasks": tasks,
            "details": details,
            "class": _class_path(model),
        }
        if isinstance(model, BaseModel):
            model_config: dict[str, Any] | None = model.save_files(staging)
            try:
                json.dumps(model_config)
            except (TypeError, ValueError) as error:
                if not pickle:
                    raise InputError(
                        f"{type(model).__name__} was built with arguments that are not JSON ({error}); "
                        "override save_files/from_saved, or save with pickle=True",
                        field="model",
                    ) from None
                model_config = None
            config["model"] = model_config
        elif not pickle:
            raise InputError("only bpcore BaseModel subclasses save without pickle=True", field="model")
        if pickle:
            import dill

            with open(staging / PICKLE_FILE, "wb") as file:
                dill.dump(model, file)
            config["pickle"] = PICKLE_FILE
        (staging / REQUIREMENTS_FILE).write_text("\n".join(requirements_for(model)) + "\n")
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, retired / "model")
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{folder / CONFIG_FILE} is not readable JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        raise ModelLoadError(f"{folder / CONFIG_FILE} is not a bpcore model config")
    return config


def load(
    name_or_path: str | os.PathLike[str], device: str | None = None, *, trust_pickle: bool = False
) -> Any:
    """Load a model saved with :func:`save`, by name (under :func:`home`) or by path."""
    from bpcore.models.base import BaseModel
    from bpcore.registry import import_object

    folder = find_saved_model(name_or_path)
    if folder is None:
        raise ModelNotFoundError(f"no saved model at {str(name_or_path)!r} (nor under {home()})")
    config = _read_config(folder)
    if config.get("model") is None:
        if not config.get("pickle"):
            raise ModelLoadError(f"{folder} holds neither weights nor a pickle")
        if not trust_pickle:
            raise UnsafeLoadError(
                f"{folder} can only be loaded by unpickling {PICKLE_FILE}, which runs code from the file: "
                "pass trust_pickle=True if you trust who made it"
            )
        import dill

        with open(folder / config["pickle"], "rb") as file:
            model = dill.load(file)
        if device is not None:
            model.to(device)
        return model
    try:
        cls = import_object(config["class"])
    except (ImportError, AttributeError) as error:
        raise ModelLoadError(f"{folder} needs {config['class']}, which is not installed ({error})") from None
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise ModelLoadError(f"{config['class']} is not a bpcore model class")
    try:
        model = cls.from_saved(folder, config["model"], device=device)
    except BpcoreError:
        raise
    except Exception as error:  # whatever the model's files hold, the caller gets one error type
        raise ModelLoadError(
            f"{folder} could not be loaded as {config['class']}: {type(error).__name__}: {error}"
        ) from None
    model.name = config.get("name") or model.name
    model.description = config.get("description", model.description)
    model.tasks = list(config.get("tasks") or model.tasks)
    model.details = dict(config.get("details") or model.details)
    return model
