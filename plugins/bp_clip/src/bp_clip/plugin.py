"""The ``clip`` entry point of the ``bpcore`` group.

bpcore calls these hooks whenever models are listed, so this module must stay cheap: it
imports neither torch nor open_clip. A model's factory (``"module:attr"``) is imported only
when the model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpcore.plugins import hookimpl

if TYPE_CHECKING:
    from bpcore.registry import RegisterModel


@hookimpl
def register_models(register: RegisterModel) -> None:
    """Declare this plugin's models: none yet, this plugin is a skeleton.

    To come: OpenCLIP models (``open_clip_torch``, e.g. ViT-B-32 with its pretrained weights)
    for ``image-text-vectorisation``, for ``image-vectorisation`` with the image tower alone,
    and for zero-shot ``image-classification`` against label texts.
    """
