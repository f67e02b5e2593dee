"""Models: the generic bases, :class:`AutoModel`, and the model classes plugins export.

``bpcore.models.BaseModel`` and ``PathModel`` import torch on first use; a plugin's classes
(``bpcore.models.STModel`` when bp-st is installed) are looked up in the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bpcore.models.auto import AutoModel

if TYPE_CHECKING:
    from bpcore.models.base import BaseModel, PathModel

__all__ = ["AutoModel", "BaseModel", "PathModel"]


def __getattr__(name: str) -> Any:
    if name in ("BaseModel", "PathModel"):
        from bpcore.models import base

        return getattr(base, name)
    from bpcore.plugins.registry import get_registry
    from bpcore.plugins.specs import import_object

    target = get_registry().classes.get(name)
    if target is None:
        raise AttributeError(f"module 'bpcore.models' has no attribute {name!r} (is its plugin installed?)")
    return import_object(target)


def __dir__() -> list[str]:
    from bpcore.plugins.registry import get_registry

    return sorted(set(__all__) | set(get_registry().classes))
