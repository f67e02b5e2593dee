"""The ``effnet`` entry point of the ``bpcore`` group.

bpcore calls these hooks whenever models are listed, so this module must stay cheap: it
imports neither torch nor timm. A model's factory (``"module:attr"``) is imported only
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

    To come: EfficientNet models from ``timm`` (ImageNet-pretrained, B0 upwards) for
    ``image-classification``, finetunable on new labels.
    """
