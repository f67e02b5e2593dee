"""Spec 8.1.1, ``backprop.utils.losses``: the triplet loss lives in :mod:`.triplet_loss`.

Importing this package imports no torch: its names load it on first access.

Example::

    from bpcore.utils.losses.triplet_loss import TripletLoss
"""

from __future__ import annotations

from bpcore.plugins import lazy_exports

__all__ = ["TripletLoss", "TripletSemiHardLoss", "pairwise_distance_torch"]

__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "bpcore.utils.losses.triplet_loss"))
