"""Spec 8.8, ``backprop.utils.save``: :func:`save` (also ``bpcore.save``)."""

from bpcore.saving import save

__all__ = ["save"]
