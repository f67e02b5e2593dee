"""Saving and loading models: a folder with ``config.json``, safetensors weights and ``requirements.txt``.

A saved folder is untrusted input (see SECURITY.md). Loading runs no code from it: the model
class it names must be one an installed plugin registers (``trust_code=True`` opts out), it
never unpickles unless asked to (``trust_pickle=True``), every entry of the folder must be a
plain file or folder inside it (no symlinks, FIFOs or devices), and ``config.json`` is bounded
in size and depth and checked field by field. ``config.json`` lists every file the save wrote
(``files``): a folder missing one is refused. The model class's ``from_saved`` gets a
:class:`~bpcore.saved_folder.SavedFolder`, which hands out only what lies inside the folder.

Saving never loses data: it refuses to replace anything that is not a bpcore model folder,
swaps the new folder in atomically (at every instant the name loads the old or the new model),
serialises concurrent saves of one name, and cleans up what killed saves left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpcore.errors import BpcoreError, InputError, ModelLoadError, ModelNotFoundError, UnsafeLoadError
from bpcore.naming import NAME_PATTERN, check_model_name
from bpcore.plugins.exports import clean_killed, home  # one copy, shared with the plugins' export caches
from bpcore.protocol import ready_for_inference
from bpcore.saved_folder import SavedFolder, json_depth
from bpcore.tasknames import TASKS

if TYPE_CHECKING:
    from bpcore.models.base import BaseModel

CONFIG_FILE = "config.json"
PICKLE_FILE = "model.bin"
REQUIREMENTS_FILE = "requirements.txt"
FORMAT_VERSION = 1
#: ``config.json`` larger or deeper than this is refused before parsing it all.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 32


def find_saved_model(name_or_path: str | os.PathLike[str]) -> Path | None:
    """The folder of a saved model given its name under :func:`home` or its path, if there is one.

    A bare name means the model saved under that name; a folder of the same name in the
    current directory loads only when nothing is saved under the name (and then with a
    warning), or when named as a path (``./name``).
    """
    path = Path(name_or_path).expanduser()
    is_name = isinstance(name_or_path, str) and bool(NAME_PATTERN.match(name_or_path))
    named = home() / name_or_path if is_name else None
    if named is not None and (named / CONFIG_FILE).is_file():
        if (path / CONFIG_FILE).is_file() and path.resolve() != named.resolve():
            warnings.warn(
                f"{name_or_path!r} loads the model saved under {home()}, not the folder ./{name_or_path} "
                f"in the current directory; load that one as './{name_or_path}'",
                UserWarning,
                stacklevel=3,
            )
        return named
    if (path / CONFIG_FILE).is_file():
        if is_name:
            warnings.warn(
                f"no model is saved as {name_or_path!r}; loading the folder ./{name_or_path} "
                "in the current directory",
                UserWarning,
                stacklevel=3,
            )
        return path
    return None


def check_folder(folder: Path) -> None:
    """Every entry of a saved folder is a plain file or folder inside it: no symlinks, FIFOs or devices.

    A FIFO would hang a reader forever, and a symlink could make a load read any file.
    """
    for root, directories, files in os.walk(folder):
        for entry in (*directories, *files):
            path = Path(root) / entry
            mode = path.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
                raise ModelLoadError(
                    f"{folder} is not a safe model folder: {path.relative_to(folder)} is {kind}"
                )


def folder_file(directory: str | os.PathLike[str], name: Any, kind: str = "file") -> Path:
    """``directory / name`` for a ``name`` read from a saved config, checked to stay inside ``directory``.

    ``kind`` is ``"file"`` or ``"folder"``. Kept for plugins written before
    :class:`~bpcore.saved_folder.SavedFolder`; ``directory.file(name)`` and
    ``directory.folder(name)`` on the folder ``from_saved`` receives do the same.
    """
    folder = SavedFolder.of(directory)
    return folder.folder(name).path if kind == "folder" else folder.file(name)


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


def _is_model_folder(path: Path) -> bool:
    try:
        config = json.loads((path / CONFIG_FILE).read_text()[:MAX_CONFIG_BYTES])
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and "format_version" in config and "class" in config


def _check_target(target: Path, overwrite: bool) -> None:
    resolved = target.resolve()
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise InputError(f"{target} is the current folder or holds it; save into a new folder", field="path")
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise InputError(f"{target} exists and is not a folder; refusing to replace it", field="path")
    if not _is_model_folder(target):
        raise InputError(
            f"{target} exists and is not a bpcore model folder; refusing to replace its files", field="path"
        )
    if not overwrite:
        raise InputError(f"{target} already exists; pass overwrite=True to replace it", field="path")


def _tasks(tasks: Any) -> list[str]:
    listed = [tasks] if isinstance(tasks, str) else list(tasks)
    for index, task in enumerate(listed):
        if task not in TASKS:
            raise InputError(f"{task!r} is not a task; tasks are {', '.join(TASKS)}", field=f"tasks[{index}]")
    return listed


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One save at a time into ``target``'s parent folder (across processes), so concurrent saves end consistent.

    The lock is on the folder itself, so nothing is left behind.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the swap is still all-or-nothing
        yield
        return
    descriptor = os.open(target.parent, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return result == 0


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.staging-"


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the old folder (if any) ends up at ``staging`` and is removed."""
    if not target.exists():
        os.replace(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)
        return
    # No atomic exchange here: two renames, with the old folder kept until the new one is in place.
    retired = staging.with_name(staging.name + "-old")
    os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def staging_folder(target: Path) -> Path:
    """A new empty folder beside ``target`` to build its next version in, named ``.{name}.staging-{pid}-…``.

    Once this process is gone, the next save or install of the name removes the folder if it is
    still there (a killed save or upload), as this call first removes such leftovers of the name.
    Being beside ``target``, it is on the same filesystem, so :func:`install_folder` can swap it in.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_killed(target.parent, _staging_prefix(target))
    return Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(target)}{os.getpid()}-", dir=target.parent))


def install_folder(staging: Path, target: Path, *, overwrite: bool) -> None:
    """Put the finished folder ``staging`` (from :func:`staging_folder`) at ``target`` atomically.

    At every instant ``target`` holds the old folder or the new one. Holds the lock :func:`save`
    holds, so saves and installs of a name never interleave; ``target`` is refused as
    :func:`save` refuses it (it exists and ``overwrite`` is false, or it is no model folder).
    """
    with _locked(target):
        _install(staging, target, overwrite)


def _install(staging: Path, target: Path, overwrite: bool) -> None:
    """:func:`install_folder` for a caller that holds the lock already (``flock`` twice would wait forever)."""
    _check_target(target, overwrite)  # again: something may have appeared since the caller checked
    _swap_in(staging, target)


def remove_saved(target: Path) -> None:
    """Remove the model folder ``target`` at once for loaders (one rename), under the lock saves take."""
    with _locked(target):
        if not _is_model_folder(target):
            raise ModelNotFoundError(f"no saved model {target.name!r:.200}")
        retired = staging_folder(target)
        os.replace(target, retired / target.name)
    shutil.rmtree(retired, ignore_errors=True)


def save(
    model: Any,
    name: str | None = None,
    description: str | None = None,
    tasks: Sequence[str] | str | None = None,
    details: Mapping[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    pickle: bool = False,
    overwrite: bool = True,
) -> Path:
    """Save ``model`` to ``path``, or to ``<home>/<name>``; return the folder.

    ``name``, ``description``, ``tasks`` and ``details`` default to the model's own, which for a
    registered model are its registry entry's: they are saved with it, and a load restores them.
    ``overwrite=False`` refuses to replace a model saved under that name.

    The folder holds ``config.json`` (name, description, tasks, details, and how to rebuild
    the model), the weights as safetensors and ``requirements.txt``. With ``pickle=True`` a
    dill pickle ``model.bin`` is written as well. The save is atomic: at every instant the
    folder holds the old model or the new one. Saving over anything that is not a bpcore
    model folder is refused.

    Example::

        bpcore.save(model, "my-model", description="Predicts sentiment")
        model = bpcore.load("my-model")

    In a multi-process run (``torchrun``, ``accelerate launch``) only the main process writes;
    the others wait for it and return the same folder.
    """
    from bpcore.model_lock import lock_for
    from bpcore.training.distributed import process_index, wait_for_processes, world_size

    name = name or getattr(model, "name", None)
    target = _target(name, path)
    arguments = (model, name, target, description, tasks, details)
    if world_size() == 1:
        # Never the weights of a finetune half-way: a save waits for one in progress to end.
        with lock_for(model).reading():
            return _save(*arguments, pickle=pickle, overwrite=overwrite)
    if process_index() == 0:
        try:
            return _save(*arguments, pickle=pickle, overwrite=overwrite)
        finally:
            wait_for_processes()
    wait_for_processes()
    return target


def _target(name: str | None, path: str | os.PathLike[str] | None) -> Path:
    """The folder a save writes: ``path``, or ``<home>/<name>``."""
    if name is not None:
        check_model_name(name)
    if path is not None:
        return Path(path).expanduser()
    if name is None:
        raise InputError("give the model a name or a path to save it to", field="name")
    return home() / name


def _save(
    model: Any,
    name: str | None,
    target: Path,
    description: str | None,
    tasks: Sequence[str] | str | None,
    details: Mapping[str, Any] | None,
    *,
    pickle: bool,
    overwrite: bool,
) -> Path:
    from bpcore.models.base import BaseModel

    _check_target(target, overwrite)
    tasks = _tasks(tasks if tasks is not None else getattr(model, "tasks", []) or [])
    description = description if description is not None else getattr(model, "description", "") or ""
    if not isinstance(description, str):
        raise InputError(f"must be a string, got {type(description).__name__}", field="description")
    details = dict(details if details is not None else getattr(model, "details", {}) or {})
    try:
        json.dumps(details)
    except (TypeError, ValueError) as error:
        raise InputError(f"must be JSON-serialisable ({error})", field="details") from None

    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        staging = staging_folder(target)
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
            config["files"] = _written_files(staging)
            (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
            _install(staging, target, overwrite)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _written_files(folder: Path) -> list[str]:
    """Every file a save wrote (relative, ``/``-separated): a load refuses the folder if one is gone."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.relative_to(folder).as_posix() != CONFIG_FILE
    )


def _check_files(folder: SavedFolder, config: Mapping[str, Any]) -> None:
    """The files the save listed are all there: a folder missing one is incomplete, never loaded half."""
    for name in config.get("files") or []:
        folder.file(name)


def _read_config(folder: Path) -> dict[str, Any]:
    config_path = folder / CONFIG_FILE
    if not stat.S_ISREG(config_path.lstat().st_mode):
        raise ModelLoadError(f"{config_path} is not a regular file")
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelLoadError(
            f"{config_path} is larger than {MAX_CONFIG_BYTES} bytes; not a bpcore model config"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise ModelLoadError(f"{config_path} is not readable JSON ({type(error).__name__})") from None
    if json_depth(config, MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH:
        raise ModelLoadError(f"{config_path} is nested deeper than {MAX_CONFIG_DEPTH} levels")
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        raise ModelLoadError(f"{config_path} is not a bpcore model config")
    problems = []
    if config.get("name") is not None and not (
        isinstance(config["name"], str) and NAME_PATTERN.match(config["name"])
    ):
        problems.append(f"name {config['name']!r} is not a valid model name")
    if not isinstance(config.get("description", ""), str):
        problems.append("description is not a string")
    tasks = config.get("tasks", [])
    if not isinstance(tasks, list) or any(task not in TASKS for task in tasks):
        problems.append(f"tasks {tasks!r} is not a list of tasks")
    if not isinstance(config.get("details", {}), dict):
        problems.append("details is not an object")
    if not isinstance(config.get("model"), (dict, type(None))):
        problems.append("model is not an object")
    if not isinstance(config.get("pickle"), (str, type(None))):
        problems.append("pickle is not a file name")
    version = config.get("format_version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        problems.append(f"format_version {version!r} is not one this bpcore reads (1..{FORMAT_VERSION})")
    files = config.get("files", [])
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        problems.append("files is not a list of file names")
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", config["class"]):
        problems.append(f"class {config['class']!r} is not 'module:Class'")
    if problems:
        raise ModelLoadError(f"{config_path} is not a valid bpcore model config: {'; '.join(problems)}")
    return config


def model_class(class_path: str, trust_code: bool = False) -> type[BaseModel]:
    """The model class a saved config names: one an installed plugin registers, never anything else.

    Importing a module runs its code, so a name read from a folder is looked up among the
    classes installed plugins export (``register_model_classes``) and imported only then.
    ``trust_code=True`` imports it whatever it is (a class of your own that no plugin registers).
    """
    from bpcore.models.base import BaseModel
    from bpcore.plugins.registry import get_registry
    from bpcore.plugins.specs import import_object

    registered = class_path in get_registry().loadable_classes()
    if not registered and not trust_code:
        raise UnsafeLoadError(
            f"the folder names the model class {class_path}, which no installed plugin registers: "
            "importing it would run code the folder chose. Install the plugin that provides it, "
            "or pass trust_code=True if you trust whoever made the folder"
        )
    try:
        cls = import_object(class_path)
    except Exception as error:
        raise ModelLoadError(
            f"the model class {class_path} cannot be imported ({type(error).__name__}: {error})"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise ModelLoadError(f"{class_path} is not a bpcore model class")
    return cls


def find_model_path(name_or_path: str | os.PathLike[str]) -> Path | None:
    """What a name or path given to :func:`load` means: a saved model (:func:`find_saved_model`), else an existing path.

    An existing path that is no bpcore-saved folder may be a plain model folder or file that a
    plugin recognises (:mod:`bpcore.model_folders`).
    """
    saved = find_saved_model(name_or_path)
    if saved is not None:
        return saved
    path = Path(name_or_path).expanduser()
    if not path.exists():
        return None
    if isinstance(name_or_path, str) and NAME_PATTERN.match(name_or_path):
        warnings.warn(
            f"no model is saved as {name_or_path!r}; loading ./{name_or_path} in the current directory",
            UserWarning,
            stacklevel=3,
        )
    return path


def saved_by_bpcore(path: Path) -> bool:
    """Whether ``path`` is a folder whose ``config.json`` is bpcore's: a JSON object naming a model class.

    Such a folder is loaded (and refused, if broken) as bpcore saved it; any other path is a
    plain model folder for the plugins to recognise.
    """
    config_path = path / CONFIG_FILE
    try:
        if not stat.S_ISREG(config_path.lstat().st_mode) or config_path.stat().st_size > MAX_CONFIG_BYTES:
            return False
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and ("class" in config or "format_version" in config)


def load(
    name_or_path: str | os.PathLike[str],
    device: str | None = None,
    *,
    trust_pickle: bool = False,
    trust_code: bool = False,
    task: str | None = None,
) -> Any:
    """Load a model saved with :func:`save`, by name (under :func:`home`) or by path.

    ``name_or_path`` is a saved model's name or a folder; ``device`` is where the weights go
    (None: CUDA when available, else the CPU). The folder is untrusted: its model class must be registered by an installed plugin
    (``trust_code=True`` allows any importable class), and a pickle-only folder needs
    ``trust_pickle=True``, because unpickling runs code.

    A plain model folder or file that an installed plugin recognises loads too, by the same
    rules (e.g. a folder ``save_pretrained`` or ``SentenceTransformer.save`` wrote; ``bpcore
    plugins`` lists the formats). ``task`` decides when two plugins recognise it.

    Example::

        model = bpcore.load("my-model")
        t5 = bpcore.load("/models/t5-small", task="summarisation")   # a save_pretrained folder
    """
    folder = find_model_path(name_or_path)
    if folder is None:
        raise ModelNotFoundError(f"no saved model at {str(name_or_path)!r} (nor under {home()})")
    if not saved_by_bpcore(folder):
        return load_plain(folder, device=device, task=task, trust_code=trust_code)
    check_folder(folder)
    config = _read_config(folder)
    saved = SavedFolder(folder)
    _check_files(saved, config)
    if config.get("model") is None:
        if not config.get("pickle"):
            raise ModelLoadError(f"{folder} holds neither weights nor a pickle")
        if not trust_pickle:
            raise UnsafeLoadError(
                f"{folder} can only be loaded by unpickling {PICKLE_FILE}, which runs code from the file: "
                "pass trust_pickle=True if you trust who made it"
            )
        import dill

        with open(saved.file(config["pickle"]), "rb") as file:
            model = dill.load(file)
        if device is not None:
            model.to(device)
        return ready_for_inference(model)
    cls = model_class(config["class"], trust_code=trust_code)
    model = _from_saved(cls, saved, config["model"], config["class"], device)
    return _with_identity(
        model, config.get("name"), config.get("description"), config.get("tasks"), config.get("details")
    )


def load_plain(
    path: Path, device: str | None = None, *, task: str | None = None, trust_code: bool = False
) -> Any:
    """Load a plain model folder (or file) that a plugin recognises, as :func:`load` loads a saved folder."""
    from bpcore.model_folders import recognise

    recognised = recognise(path, task, why_not_saved=_why_not_saved(path))
    if path.is_dir():
        check_folder(path)
    cls = model_class(recognised.model_class, trust_code=trust_code)
    model = _from_saved(cls, SavedFolder(recognised.root), recognised.config, recognised.model_class, device)
    name = recognised.name or _name_from(path)
    return _with_identity(model, name, recognised.description, recognised.tasks, recognised.details)


def _why_not_saved(path: Path) -> str:
    if not path.is_dir():
        return "it is a file"
    if not (path / CONFIG_FILE).exists():
        return f"it has no {CONFIG_FILE}"
    try:
        _read_config(path)
    except ModelLoadError as error:
        return str(error)
    return f"its {CONFIG_FILE} is another library's"


def _name_from(path: Path) -> str | None:
    """A model name made from the folder's (or file's) name, if one can be: errors and saves name the model by it."""
    name = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower() if path.is_file() else path.name.lower()).strip("-")
    return name[:100] if NAME_PATTERN.match(name[:100]) else None


def _from_saved(
    cls: type[BaseModel], saved: SavedFolder, model_config: Any, class_path: str, device: str | None
) -> Any:
    folder = saved.path
    try:
        # The model reads its files through ``saved``, which hands out only what lies inside the folder.
        return cls.from_saved(saved, model_config, device=device)
    except InputError as error:  # a constructor refusing a value the folder holds: the folder is bad
        raise ModelLoadError(f"{folder} holds a value its model refuses: {error}") from None
    except BpcoreError:
        raise
    except Exception as error:  # whatever the model's files hold, the caller gets one error type
        raise ModelLoadError(
            f"{folder} could not be loaded as {class_path}: {type(error).__name__}: {error}"
        ) from None
    except BaseException as error:
        if type(error).__name__ != "PanicException":  # a Rust library (tokenizers, safetensors) panicking
            raise
        raise ModelLoadError(f"{folder} could not be loaded as {class_path}: {error}") from None


def _with_identity(model: Any, name: Any, description: Any, tasks: Any, details: Any) -> Any:
    model.name = name or model.name
    model.description = description if description is not None else model.description
    model.tasks = list(tasks or model.tasks)
    model.details = dict(details or model.details)
    return ready_for_inference(model)
