"""bp-trigram: an example bpcore plugin with a text model and an image model.

Importing this package imports no torch (bpcore imports it to list models); the model
classes load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bp_trigram.image import TinyConvModel
    from bp_trigram.text import TrigramTextModel

__all__ = ["TinyConvModel", "TrigramTextModel"]


def __getattr__(name: str) -> Any:
    if name == "TrigramTextModel":
        from bp_trigram.text import TrigramTextModel

        return TrigramTextModel
    if name == "TinyConvModel":
        from bp_trigram.image import TinyConvModel

        return TinyConvModel
    raise AttributeError(f"module 'bp_trigram' has no attribute {name!r}")
