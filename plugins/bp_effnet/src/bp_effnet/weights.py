"""Local weights files: safetensors, or a torch state dict read without unpickling code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import torch

from bpcore.plugins import ModelLoadError

if TYPE_CHECKING:

    class TimmClassifier(torch.nn.Module):
        """What bp-effnet uses of a timm classification network (timm declares it in no base class)."""

        num_classes: int

        def get_classifier(self) -> torch.nn.Module: ...

        def reset_classifier(self, num_classes: int) -> None: ...


def is_timm_classifier(network: Any) -> TypeGuard[TimmClassifier]:
    """Whether ``network`` is a torch module with timm's classifier methods (every timm model has them)."""
    return (
        isinstance(network, torch.nn.Module)
        and isinstance(getattr(network, "num_classes", None), int)
        and callable(getattr(network, "get_classifier", None))
        and callable(getattr(network, "reset_classifier", None))
    )


def _is_safetensors(path: Path) -> bool:
    # A safetensors file starts with an 8-byte header length, then a JSON header: "{".
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as file:
        start = file.read(9)
    return len(start) == 9 and start[8:9] == b"{"


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (``{"state_dict": ...}`` and ``module.`` prefixes unwrapped).

    A safetensors file is read as such; anything else with ``torch.load(weights_only=True)``,
    which refuses files that would run code when unpickled.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from timm.models import load_state_dict

    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelLoadError(f"no weights file at {str(path)!r}")
    try:
        if _is_safetensors(file):
            return load_file(str(file))
        return load_state_dict(str(file), weights_only=True)
    except (SafetensorError, RuntimeError, OSError, ValueError, EOFError) as error:
        raise ModelLoadError(
            f"{str(path)!r} is neither a safetensors file nor a torch state dict that loads without "
            f"unpickling code ({type(error).__name__}: {str(error)[:300]})"
        ) from None


def load_into(model: TimmClassifier, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` strictly into a timm model, resizing its classifier to the file's first."""
    _check_dtypes(model, state_dict, source)
    # timm.create_model sets pretrained_cfg; a network built from its class directly has none.
    config: dict[str, Any] = getattr(model, "pretrained_cfg", None) or {}
    classifier = config.get("classifier", "classifier")
    head = state_dict.get(f"{classifier}.weight")
    if head is not None and head.ndim == 2 and head.shape[0] != model.num_classes:
        model.reset_classifier(head.shape[0])
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        architecture = config.get("architecture", type(model).__name__)
        raise ModelLoadError(
            f"the weights in {source!r} do not fit {architecture!r}: {str(error)[:500]}"
        ) from None


def _check_dtypes(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Floating-point weights where the network has them: ``load_state_dict`` would convert integers silently."""
    for key, tensor in model.state_dict().items():
        saved = state_dict.get(key)
        if isinstance(saved, torch.Tensor) and saved.is_floating_point() != tensor.is_floating_point():
            raise ModelLoadError(
                f"the weights in {source!r} have the wrong dtype: {key!r} is {saved.dtype}, "
                f"the network holds {tensor.dtype}"
            )
