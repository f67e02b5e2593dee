"""The contract's sample inputs and finetuning data (:mod:`bpcore.contracts.samples`), for the kit."""

from bpcore.contracts import sample_finetune_data as finetune_data
from bpcore.contracts import sample_inputs as inputs
from bpcore.contracts.samples import COLOURS, LABELS, TEXTS, sample_image

__all__ = ["COLOURS", "LABELS", "TEXTS", "finetune_data", "inputs", "sample_image"]
