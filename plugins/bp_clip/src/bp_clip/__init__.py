"""bp-clip: OpenCLIP models for bpcore's image and image-text tasks.

Zero-shot (and finetuned) image classification, image vectorisation, text vectorisation with
CLIP's text tower, and image-text vectorisation, all finetunable. Importing this package imports
neither torch nor open_clip (bpcore imports it to list models); ``bp_clip.CLIP`` loads them on
first access.

Example::

    from bp_clip import CLIP

    model = CLIP("ViT-B-32", pretrained="/models/vit-b-32-openai.safetensors")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpcore.plugins import lazy_exports

if TYPE_CHECKING:
    from bp_clip.model import CLIP

__version__ = "0.2.0"
__all__ = ["CLIP"]

__getattr__, __dir__ = lazy_exports(__name__, {"CLIP": "bp_clip.model"})
