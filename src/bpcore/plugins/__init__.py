"""Everything a plugin imports from bpcore: write a model family with these names and nothing else.

A plugin declares its models in a hook (cheap: plain metadata, no torch) and builds them in a
model class (a :class:`BaseModel` or :class:`PathModel`); the core does the rest: it names the
model, puts it in eval mode, keeps concurrent calls safe, checks saved folders and finetunes.

Example (the plugin's entry-point module)::

    from bpcore.plugins import RegisterModel, hookimpl

    @hookimpl
    def register_models(register: RegisterModel) -> None:
        register(name="my-model", factory="my_pkg.model:MyModel", tasks=["emotion"])

Importing this module imports no torch: ``BaseModel``, ``PathModel`` and ``adamw`` load it on
first access. A plugin that runs its models in another inference engine caches their exports
with :func:`cached_export` and :func:`export_folder` (:mod:`.exports`). Inside bpcore this
package also holds the plugin machinery: :mod:`.hookspecs`, :mod:`.specs`, :mod:`.manager`
(finding plugins) and :mod:`.registry` (resolving names).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bpcore.devices import resolve_device
from bpcore.errors import (
    BpcoreError,
    InputError,
    InputTypeError,
    ModelLoadError,
    ModelProtocolError,
    TaskNotSupportedError,
)
from bpcore.plugins.exports import (
    cached_export,
    check_backend,
    export_cache,
    export_folder,
    import_engine,
    weights_hash,
)
from bpcore.plugins.hookspecs import hookimpl
from bpcore.plugins.specs import ModelSpec, RegisterClass, RegisterModel
from bpcore.quiet import BarSwitch, quiet
from bpcore.saved_folder import (
    PATH_KEY,
    SavedFolder,
    check_int,
    check_numbers,
    check_paths,
    check_weights,
    safetensors_header,
)
from bpcore.tasknames import (
    EMOTION,
    IMAGE_CLASSIFICATION,
    IMAGE_TEXT_VECTORISATION,
    IMAGE_VECTORISATION,
    QA,
    SUMMARISATION,
    TASKS,
    TEXT_CLASSIFICATION,
    TEXT_GENERATION,
    TEXT_VECTORISATION,
)

if TYPE_CHECKING:
    from bpcore.images import load_image
    from bpcore.label_scores import learned_label_answers, probabilities, ranked
    from bpcore.models.base import BaseModel, ModelIdentity, PathModel
    from bpcore.tasks.base import adamw

__all__ = [
    "EMOTION",
    "IMAGE_CLASSIFICATION",
    "IMAGE_TEXT_VECTORISATION",
    "IMAGE_VECTORISATION",
    "PATH_KEY",
    "QA",
    "SUMMARISATION",
    "TASKS",
    "TEXT_CLASSIFICATION",
    "TEXT_GENERATION",
    "TEXT_VECTORISATION",
    "BarSwitch",
    "BaseModel",
    "BpcoreError",
    "InputError",
    "InputTypeError",
    "ModelIdentity",
    "ModelLoadError",
    "ModelProtocolError",
    "ModelSpec",
    "PathModel",
    "RegisterClass",
    "RegisterModel",
    "SavedFolder",
    "TaskNotSupportedError",
    "adamw",
    "cached_export",
    "check_backend",
    "check_int",
    "check_numbers",
    "check_paths",
    "check_weights",
    "export_cache",
    "export_folder",
    "hookimpl",
    "import_engine",
    "lazy_exports",
    "learned_label_answers",
    "load_image",
    "probabilities",
    "quiet",
    "ranked",
    "resolve_device",
    "safetensors_header",
    "weights_hash",
]

# The names that need torch, and the module each comes from.
_LAZY = {
    "BaseModel": "bpcore.models.base",
    "ModelIdentity": "bpcore.models.base",
    "PathModel": "bpcore.models.base",
    "adamw": "bpcore.tasks.base",
    "learned_label_answers": "bpcore.label_scores",
    "load_image": "bpcore.images",
    "probabilities": "bpcore.label_scores",
    "ranked": "bpcore.label_scores",
}


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose classes import torch: each loads on first access.

    A plugin package is imported whenever models are listed, so it must not import its model
    modules itself. ``exports`` maps each name to the module that defines it.

    Example (a plugin's ``__init__.py``)::

        __getattr__, __dir__ = lazy_exports(__name__, {"MyModel": "my_pkg.model"})
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *exports})

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
