"""bp-hf: Hugging Face ``transformers`` models for bpcore's text tasks.

Question answering, summarisation and emotion (T5 by task prefix), text generation (encoder-
decoders and causal language models), zero-shot text classification (any NLI model) and text
classification finetuned on your own labels (any encoder).

Importing this package imports neither torch nor transformers (bpcore imports it to list
models); the model classes load them on first access.

Example::

    import bpcore
    from bp_hf import HFCausalLMTGModel

    tg = bpcore.TextGeneration(HFCausalLMTGModel("/models/gpt2"))
    tg("I like to go to", max_length=20)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpcore.plugins import lazy_exports

if TYPE_CHECKING:
    from bp_hf.base import HFModel, HFTextGenerationModel
    from bp_hf.generation import T5, HFCausalLMTGModel, HFSeq2SeqTGModel
    from bp_hf.nli import HFNLIModel
    from bp_hf.sequence_classification import HFSeqTCModel
    from bp_hf.t5_multitask import T5QASummaryEmotion

__version__ = "0.2.0"

#: Each exported class and the module that defines it.
CLASS_MODULES = {
    "HFModel": "bp_hf.base",
    "HFTextGenerationModel": "bp_hf.base",
    "HFSeq2SeqTGModel": "bp_hf.generation",
    "T5": "bp_hf.generation",
    "HFCausalLMTGModel": "bp_hf.generation",
    "HFNLIModel": "bp_hf.nli",
    "HFSeqTCModel": "bp_hf.sequence_classification",
    "T5QASummaryEmotion": "bp_hf.t5_multitask",
}
__all__ = [
    "HFCausalLMTGModel",
    "HFModel",
    "HFNLIModel",
    "HFSeq2SeqTGModel",
    "T5",
    "HFSeqTCModel",
    "HFTextGenerationModel",
    "T5QASummaryEmotion",
]

__getattr__, __dir__ = lazy_exports(__name__, CLASS_MODULES)
