"""The hooks a bpcore plugin can implement (reference: docs/plugins/hooks.md).

Hook implementations must stay cheap: they run whenever models are listed, so they declare
metadata and import no torch and no model library. Mark each with ``@bpcore.hookimpl``; a
misspelled or unmarked hook is reported by ``bpcore plugins``.
"""

from __future__ import annotations

import pluggy

from bpcore.plugins.specs import RegisterClass, RegisterFolderFormat, RegisterModel, RegisterModuleAlias

hookspec = pluggy.HookspecMarker("bpcore")
#: Marks a plugin's hook implementations (also ``bpcore.hookimpl``).
hookimpl = pluggy.HookimplMarker("bpcore")


@hookspec
def register_models(register: RegisterModel) -> None:
    """Declare models by calling ``register(name=..., factory="module:attr", tasks=[...], ...)``."""


@hookspec
def register_model_classes(register: RegisterClass) -> None:
    """Export model classes as ``bpcore.models.<Name>`` by calling ``register("Name", "module:attr")``."""


@hookspec
def register_module_aliases(register: RegisterModuleAlias) -> None:
    """Give a plugin module a path under ``bpcore.models`` by calling ``register("path", "module")``.

    For code written against another layout (Backprop's ``backprop.models.clip``):
    ``register("clip", "bp_clip.model")`` makes ``import bpcore.models.clip`` import ``bp_clip.model``
    then, and not before; ``register("clip.model", "bp_clip.model")`` serves the submodule path.
    """


@hookspec
def register_folder_formats(register: RegisterFolderFormat) -> None:
    """Declare a model folder format: ``register(name=..., recognise="module:function", description=...)``.

    When a task or :func:`bpcore.load` gets a path that is no bpcore-saved folder, each format's
    ``recognise(path, task)`` says whether the path is one of its models and how to load it
    (``{"class": "module:Class", "model": {...}, "tasks": [...]}``), or returns None.
    """
