"""Cached exports of a model for another inference engine (OpenVINO, ...): the part no engine owns.

A plugin that runs a model in another engine exports it once and caches the export under
``$BPCORE_HOME/.cache/<engine>/<weights hash>-<engine version>/`` (:func:`export_folder`), so the
same weights under the same engine release are exported once, and changed weights (finetuning)
get an export of their own. :func:`cached_export` builds the folder in a staging folder beside it
and renames it into place, so a killed export leaves nothing half-written (the next export of
the name removes what it left); it records the size and hash of every file written, and checks
them on every load. A folder that fails the check, or that the plugin cannot read, is exported
again. The engine is the plugin's: this module imports none, and only handles folders, hashes
and the export and load functions the plugin passes.

Example (a plugin's backend)::

    from bpcore.plugins import cached_export, export_folder

    folder = export_folder("openvino", openvino_version, module, input_names)
    compiled = cached_export(
        folder,
        export=write_ir,                      # write_ir(staging): writes files, returns what to record
        load=lambda saved: compile_ir(saved.file("model.xml")),
        plugin="bp-hf",
        what="my-model to OpenVINO",
    )
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bpcore.errors import InputError, ModelLoadError
from bpcore.saved_folder import SavedFolder

if TYPE_CHECKING:
    import torch

#: The record of an export, written last into its folder: what the plugin recorded, and every file's size and hash.
RECORD = "export.json"
Loaded = TypeVar("Loaded")


def check_backend(backend: Any, backends: tuple[str, ...]) -> str:
    """``backend`` if it is one of ``backends``, else an InputError naming the ``backend`` field."""
    if not isinstance(backend, str) or backend not in backends:
        raise InputError(f"expected one of {', '.join(backends)}, got {backend!r}", field="backend")
    return backend


def import_engine(module: str, extra: str, name: str | None = None) -> Any:
    """The engine's module, or a ModelLoadError naming the ``extra`` that installs it.

    Example: ``openvino = import_engine("openvino", "bp-st[openvino]", name="OpenVINO")``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ModelLoadError(
            f"backend={module!r} needs {name or module}, which is not installed: pip install '{extra}' "
            f"(or use backend='torch') [{type(error).__name__}: {error}]"
        ) from error


def home() -> Path:
    """bpcore's home folder: ``$BPCORE_HOME``, or ``~/.cache/bpcore`` when unset."""
    return Path(os.environ.get("BPCORE_HOME") or Path.home() / ".cache" / "bpcore")


def export_cache(engine: str) -> Path:
    """Where exports for ``engine`` are cached: ``$BPCORE_HOME/.cache/<engine>``."""
    return home() / ".cache" / engine


def export_folder(engine: str, version: str, module: torch.nn.Module, *settings: Any) -> Path:
    """The cache folder of ``module``'s export: ``<export_cache(engine)>/<weights hash>-<version>``.

    ``version`` is the engine's release (what changes the files it writes); ``settings`` as
    :func:`weights_hash` takes them. Example: ``export_folder("openvino", "2026.4.1", model, ["input_ids"])``.
    """
    return export_cache(engine) / f"{weights_hash(module, *settings)}-{version}"


def weights_hash(module: torch.nn.Module, *settings: Any) -> str:
    """A hash of what an export of ``module`` computes: its class, ``settings`` and every weight.

    ``settings`` (JSON-able) are whatever else changes the export: the model's configuration
    (which may change the computation and not a single weight), its inputs, what it outputs.
    """
    import torch  # here, not above: importing the plugin API imports no torch

    digest = hashlib.sha256()
    digest.update(type(module).__qualname__.encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()[:24]


def cached_export(
    folder: Path,
    export: Callable[[Path], Mapping[str, Any]],
    load: Callable[[SavedFolder], Loaded],
    *,
    plugin: str,
    what: str,
) -> Loaded:
    """What ``load`` makes of the export cached in ``folder``: exported first when missing, again when damaged.

    ``export(staging)`` writes the export's files into the empty folder ``staging`` and returns
    what to record about it (JSON); ``load`` gets the folder once its files are checked, and
    raises ModelLoadError, RuntimeError or OSError for one it cannot read (then it is exported
    again). ``plugin`` and ``what`` name the export in the line printed to stderr when it runs.
    """
    if folder.exists():
        try:
            return load(checked_export(folder))
        except (ModelLoadError, RuntimeError, OSError) as error:
            print(
                f"{plugin}: the cached export {folder} is unusable ({error}); exporting again",
                file=sys.stderr,
            )
            shutil.rmtree(folder, ignore_errors=True)
    print(f"{plugin}: exporting {what}, once (cached in {folder})", file=sys.stderr)
    _publish(folder, export)
    return load(checked_export(folder))


def checked_export(folder: Path) -> SavedFolder:
    """``folder``, after checking that its files are exactly those its record lists, unchanged."""
    saved = SavedFolder(folder)
    record = saved.read_json(RECORD)
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or set(files) != set(_files(folder)) - {RECORD}:
        raise ModelLoadError(f"{RECORD} does not list the files of {folder}")
    for name, expected in files.items():
        if _describe(saved.file(name)) != expected:
            raise ModelLoadError(f"{name} differs from what was exported")
    return saved


def _publish(folder: Path, export: Callable[[Path], Mapping[str, Any]]) -> None:
    """Run ``export`` into a staging folder beside ``folder``, record its files, and rename it into place."""
    started = time.monotonic()
    folder.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{folder.name}."
    clean_killed(folder.parent, prefix)
    staging = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=folder.parent))
    try:
        record = dict(export(staging))
        record["exported_seconds"] = round(time.monotonic() - started, 1)
        record["files"] = {name: _describe(staging / name) for name in _files(staging)}
        (staging / RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
        try:
            staging.rename(folder)
        except OSError:
            if not folder.exists():
                raise  # otherwise another process exported the same weights first: theirs is used
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def clean_killed(parent: Path, prefix: str) -> None:
    """Remove the folders in ``parent`` named ``<prefix><process id>-…`` whose process is gone.

    What a killed writer left: a save's, an upload's or an export's staging folder. Example:
    ``clean_killed(home(), ".my-model.staging-")``.
    """
    for leftover in parent.glob(f"{prefix}*"):
        pid = leftover.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def _files(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def _describe(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
