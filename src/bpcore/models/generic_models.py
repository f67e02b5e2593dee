"""Spec 6.11's ``backprop.models.generic_models``: the generic model bases under the spec's path.

``BaseModel`` and ``PathModel`` are bpcore's (:mod:`bpcore.models.base`); the spec's other
generic classes belong to a model family (``HFModel``, ``HFTextGenerationModel``: bp-hf), so
every other name is the model class a plugin exports as ``bpcore.models.<Name>``. Each loads
on first access: importing this module imports no torch.

Example::

    from bpcore.models.generic_models import BaseModel, HFModel
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpcore.models.base import BaseModel, PathModel

__all__ = ["BaseModel", "PathModel"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bpcore.models import base

        return getattr(base, name)
    from bpcore.plugins.registry import get_registry
    from bpcore.plugins.specs import import_object

    target = get_registry().classes.get(name)
    if target is None:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r} (is the plugin exporting it installed?)"
        )
    return import_object(target)


def __dir__() -> list[str]:
    from bpcore.plugins.registry import get_registry

    return sorted(set(__all__) | set(get_registry().classes))
