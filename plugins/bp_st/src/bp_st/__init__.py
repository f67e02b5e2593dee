"""bp-st: Sentence Transformers models for bpcore's text-vectorisation task.

Importing this package imports neither torch nor sentence-transformers (bpcore imports it to
list models); ``bp_st.STModel`` loads them on first access.

Example::

    from bp_st import STModel

    model = STModel("/path/to/a/sentence-transformers/folder")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpcore.plugins import lazy_exports

if TYPE_CHECKING:
    from bp_st.model import STModel

__version__ = "0.2.0"
__all__ = ["STModel"]

__getattr__, __dir__ = lazy_exports(__name__, {"STModel": "bp_st.model"})
