"""The ``effnet`` entry point of the ``bpcore`` group: plain metadata only.

bpcore calls these hooks whenever models are listed, so this module must stay cheap: it
imports neither torch nor timm. A model's factory (``"module:attr"``) is imported only
when the model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable

from bp_effnet.catalogue import TIMM_NAMES, description, details
from bpcore.plugins import RegisterModel, hookimpl

TASK = "image-classification"


@hookimpl
def register_models(register: RegisterModel) -> None:
    """Declare ``efficientnet-b0`` … ``efficientnet-b7`` (ImageNet weights from timm's hub, finetunable)."""
    # Not the task's default: zero-shot image classification (bp-clip's ``clip``) is.
    for name in TIMM_NAMES:
        register(
            name=name,
            factory="bp_effnet.model:EfficientNet",
            tasks=[TASK],
            description=description(name),
            finetunable=[TASK],
            init_kwargs={"model_path": name},
            details=details(name),
        )


@hookimpl
def register_module_aliases(register: Callable[[str, str], None]) -> None:
    """Spec 6.2: ``from bpcore.models.efficientnet.model import EfficientNet``."""
    register("efficientnet", "bp_effnet.model")
    register("efficientnet.model", "bp_effnet.model")


@hookimpl
def register_folder_formats(register: Callable[..., None]) -> None:
    """A plain timm EfficientNet folder or weights file is a bp-effnet model (see :mod:`bp_effnet.folders`)."""
    from bp_effnet.folders import DESCRIPTION

    register(name="timm-efficientnet", recognise="bp_effnet.folders:recognise", description=DESCRIPTION)
