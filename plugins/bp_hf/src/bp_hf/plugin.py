"""The ``hf`` entry point of the ``bpcore`` group.

bpcore calls these hooks whenever models are listed, so this module must stay cheap: it
imports neither torch nor transformers. A model's factory (``"module:attr"``) is imported only
when the model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpcore.plugins import hookimpl

if TYPE_CHECKING:
    from bpcore.registry import RegisterModel


@hookimpl
def register_models(register: RegisterModel) -> None:
    """Declare this plugin's models: none yet, this plugin is a skeleton.

    To come: Hugging Face ``transformers`` checkpoints for the text tasks --
    extractive question answering (``qa``), sequence classifiers for ``text-classification``
    and ``emotion``, sequence-to-sequence models (BART, T5) for ``summarisation``, and causal
    language models (GPT-2 and the like) for ``text-generation``.
    """
