"""Spec 8.6, ``backprop.utils.load``: :func:`load` (also ``bpcore.load``)."""

from bpcore.saving import load

__all__ = ["load"]
