"""Spec 8.4, ``backprop.utils.functions``: :func:`cosine_similarity` (also ``bpcore.cosine_similarity``)."""

from bpcore.functions import cosine_similarity

__all__ = ["cosine_similarity"]
