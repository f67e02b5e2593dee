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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bp_effnet.model import EfficientNet

__version__ = "0.2.0"
__all__ = ["EfficientNet"]


def __getattr__(name: str) -> Any:
    if name == "EfficientNet":
        from bp_effnet.model import EfficientNet

        return EfficientNet
    raise AttributeError(f"module 'bp_effnet' has no attribute {name!r}")
