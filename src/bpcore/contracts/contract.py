"""The kinds of declaration a task contract is made of (declared in :mod:`bpcore.contracts.declarations`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from bpcore.errors import InputError, InputTypeError, TaskNotSupportedError

#: How a variant turns a model's ``training_step`` output into a loss.
LOSS_FROM_MODEL = "model"
LOSS_CROSS_ENTROPY = "cross_entropy"
#: The model's own loss (a scalar, as spec 3.5.2 asks), or logits the core applies cross-entropy to.
LOSS_FROM_MODEL_OR_CROSS_ENTROPY = "model_or_cross_entropy"
LOSS_BINARY_CROSS_ENTROPY = "binary_cross_entropy"
LOSS_COSINE = "cosine_similarity"
LOSS_TRIPLET = "triplet"

#: What one answer of a task is.
ANSWER_TEXT = "text"
ANSWER_LABELS = "labels"
ANSWER_VECTOR = "vector"


@attrs.frozen
class Optimizer:
    """A task's default optimizer (used when neither the caller nor the model gives one)."""

    kind: str  # "AdamW", "SGD" or "Adafactor"
    learning_rate: float
    weight_decay: float = 0.0

    def build(self, parameters: Any) -> Any:
        import torch

        trainable = [parameter for parameter in parameters if parameter.requires_grad]
        if self.kind == "AdamW":
            try:  # fused: on CPU it steps a 22M-parameter model ~50x faster
                return torch.optim.AdamW(
                    trainable, lr=self.learning_rate, weight_decay=self.weight_decay, fused=True
                )
            except (RuntimeError, TypeError):
                return torch.optim.AdamW(trainable, lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.kind == "SGD":
            return torch.optim.SGD(trainable, lr=self.learning_rate, weight_decay=self.weight_decay)
        return torch.optim.Adafactor(trainable, lr=self.learning_rate, weight_decay=self.weight_decay)

    def describe(self) -> str:
        decay = f", weight decay {_number(self.weight_decay)}" if self.weight_decay else ""
        return f"{self.kind}, {_number(self.learning_rate)}{decay}"


def _number(value: float) -> str:
    """``1e-5`` rather than ``1e-05``; ``0.1`` as it is."""
    return f"{value:g}" if value >= 0.1 else f"{value:.0e}".replace("e-0", "e-")


@attrs.frozen
class VariantContract:
    """One way to finetune a task.

    ``params`` is the schema of ``finetune``'s params; ``examples(data, options)`` turns the
    checked data into :class:`~bpcore.batching.Example` views (what ``process_batch`` receives,
    described in ``receives``); ``loss`` says what the core does with ``training_step``'s output
    (described in ``returns``); ``grouped`` batches same-group examples together;
    ``pre_finetuning`` names what the model's ``pre_finetuning`` is told; ``sample`` gives small,
    learnable params for the conformance kit.
    """

    name: str
    params: type
    examples: Callable[[Any, Mapping[str, Any]], list[Any]]
    loss: str
    receives: str
    returns: str
    sample: Callable[[], dict[str, Any]]
    grouped: bool = False
    pre_finetuning: tuple[str, ...] = ()

    @property
    def multi_label(self) -> bool:
        return self.loss == LOSS_BINARY_CROSS_ENTROPY


@attrs.frozen
class TaskContract:
    """A task: its call input's schema, the answer's kind, its finetuning variants (the first is the default)."""

    name: str
    input: type
    answer: str
    #: Per-item fields of a call (the rest, like ``labels``, apply to every item).
    item_fields: tuple[str, ...]
    #: What the model's ``task_input`` holds, and what one answer is (for the protocol guide).
    task_input: str
    answer_doc: str
    sample_input: Callable[[], dict[str, Any]]
    #: The distributions that offer models for it (only to tell a user what to install).
    install_hints: tuple[str, ...]
    variants: tuple[VariantContract, ...] = ()
    optimizer: Optimizer = Optimizer("AdamW", 1e-5)
    #: Keyword arguments the model is called with besides ``task``.
    keywords: tuple[str, ...] = ()
    top_k: bool = False
    #: The task call's arguments beyond its items (``labels``, ``top_k``, generation options...).
    call_options: tuple[str, ...] = ()
    #: ``finetune``'s own options and their defaults (handed to ``examples``), beyond the loop's.
    finetune_options: Mapping[str, int | None] = attrs.field(factory=dict)

    @property
    def variant_names(self) -> list[str]:
        return [variant.name for variant in self.variants]

    def variant(self, name: str | None = None) -> VariantContract:
        """The variant called ``name`` (None: the default); a bpcore error naming ``variant`` otherwise."""
        if not self.variants:
            raise TaskNotSupportedError(f"{self.name!r} has no finetuning")
        if name is None:
            return self.variants[0]
        if not isinstance(name, str):
            raise InputTypeError(
                f"expected one of {self.variant_names}, got {type(name).__name__}", field="variant"
            )
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise InputError(
            f"unknown variant {name!r:.100}; {self.name} has {self.variant_names}", field="variant"
        )
