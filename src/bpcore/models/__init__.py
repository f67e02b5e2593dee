"""Models: the generic bases, :class:`AutoModel`, and the model classes plugins export.

``bpcore.models.BaseModel`` and ``PathModel`` import torch on first use; a plugin's classes
(``bpcore.models.STModel`` when bp-st is installed) are looked up in the registry. Plugins
also give their modules paths here, as Backprop laid them out (``bpcore.models.clip``,
``bpcore.models.hf_nli_model.model``; see :mod:`bpcore.models.aliases`), and the spec's own
``bpcore.models.generic_models`` and ``bpcore.models.auto_model`` are bpcore's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bpcore.models import aliases
from bpcore.models.auto import AutoModel

if TYPE_CHECKING:
    from bpcore.models.base import BaseModel, PathModel

__all__ = ["AutoModel", "BaseModel", "PathModel"]

aliases.install()

# Spec 6.10 and 6.11: bpcore's modules under the spec's names, imported on first access.
_SPEC_MODULES = ("auto_model", "generic_models")


def __getattr__(name: str) -> Any:
    if name in ("BaseModel", "PathModel"):
        from bpcore.models import base

        return getattr(base, name)
    from bpcore.plugins.registry import get_registry
    from bpcore.plugins.specs import import_object

    registry = get_registry()
    target = registry.classes.get(name)
    if target is not None:
        return import_object(target)
    if name in _SPEC_MODULES or registry.module_alias(name):
        # As in Backprop, whose package imported them all: ``bpcore.models.clip`` without an import.
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'bpcore.models' has no attribute {name!r} (is its plugin installed?)")


def __dir__() -> list[str]:
    from bpcore.plugins.registry import get_registry

    return sorted(
        set(__all__) | set(get_registry().classes) | set(_SPEC_MODULES) | set(aliases.top_level_aliases())
    )
