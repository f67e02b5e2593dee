"""bp-trigram: an example bpcore plugin with a text model and an image model.

Importing this package imports no torch (bpcore imports it to list models); the model
classes load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpcore.plugins import lazy_exports

if TYPE_CHECKING:
    from bp_trigram.image import TinyConvModel
    from bp_trigram.text import TrigramTextModel

__all__ = ["TinyConvModel", "TrigramTextModel"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"TinyConvModel": "bp_trigram.image", "TrigramTextModel": "bp_trigram.text"}
)
