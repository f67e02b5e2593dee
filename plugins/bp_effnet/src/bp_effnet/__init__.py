"""bp-effnet: EfficientNet models from ``timm`` for bpcore's image-classification task.

Importing this package imports neither torch nor timm (bpcore imports it to list models);
``bp_effnet.EfficientNet`` loads them on first access.

Example::

    import bpcore
    from bp_effnet import EfficientNet

    ic = bpcore.ImageClassification(EfficientNet("efficientnet-b0"))      # ImageNet weights (online once)
    ic("dog.png", top_k=3)                       # {"beagle": 0.71, "English foxhound": 0.12, ...}
    ic.finetune({"images": "photos/"})           # one sub-folder per label (see bpcore.folders)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpcore.plugins import lazy_exports

if TYPE_CHECKING:
    from bp_effnet.model import EfficientNet

__version__ = "0.2.0"
__all__ = ["EfficientNet"]

__getattr__, __dir__ = lazy_exports(__name__, {"EfficientNet": "bp_effnet.model"})
