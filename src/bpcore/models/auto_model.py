"""Spec 6.10's ``backprop.models.auto_model``: :class:`~bpcore.models.auto.AutoModel` under the spec's path.

Example::

    from bpcore.models.auto_model import AutoModel

    AutoModel.list_models(task="text-vectorisation", display=True)
"""

from __future__ import annotations

from bpcore.models.auto import AutoModel

__all__ = ["AutoModel"]
