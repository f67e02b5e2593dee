"""The task contract, declared once: what each task takes, what it hands a model, what it answers.

One :class:`TaskContract` per task and one :class:`VariantContract` per way to finetune it,
as scikit-learn declares its estimator tags: the tasks take their variants, losses,
``pre_finetuning`` arguments and default optimizer from here; the conformance kit takes its
sample data and which rules apply; the protocol guide's tables are rendered from it
(:mod:`bpcore.contracts.tables`). Adding a task is one declaration in
:mod:`bpcore.contracts.declarations` plus the task's call signature.

Example::

    from bpcore.contracts import CONTRACTS

    contract = CONTRACTS["text-classification"]
    contract.answer                            # "labels"
    [variant.name for variant in contract.variants]   # ["single_label", "multi_label"]
    contract.variant("multi_label").loss       # "binary_cross_entropy"
"""

from __future__ import annotations

import copy
from typing import Any

from bpcore.contracts.contract import (
    ANSWER_LABELS,
    ANSWER_TEXT,
    ANSWER_VECTOR,
    LOSS_BINARY_CROSS_ENTROPY,
    LOSS_COSINE,
    LOSS_CROSS_ENTROPY,
    LOSS_FROM_MODEL,
    LOSS_FROM_MODEL_OR_CROSS_ENTROPY,
    LOSS_TRIPLET,
    Optimizer,
    TaskContract,
    VariantContract,
)
from bpcore.contracts.declarations import DECLARED

__all__ = [
    "ANSWER_LABELS",
    "ANSWER_TEXT",
    "ANSWER_VECTOR",
    "CONTRACTS",
    "LOSS_BINARY_CROSS_ENTROPY",
    "LOSS_COSINE",
    "LOSS_CROSS_ENTROPY",
    "LOSS_FROM_MODEL",
    "LOSS_FROM_MODEL_OR_CROSS_ENTROPY",
    "LOSS_TRIPLET",
    "Optimizer",
    "TaskContract",
    "VariantContract",
    "sample_finetune_data",
    "sample_inputs",
    "tasks_answering",
]

#: Every task's contract, by task name, in the spec's order.
CONTRACTS: dict[str, TaskContract] = {contract.name: contract for contract in DECLARED}


def tasks_answering(answer: str) -> tuple[str, ...]:
    """The tasks whose answers are of one kind (``ANSWER_TEXT``, ``ANSWER_LABELS``, ``ANSWER_VECTOR``)."""
    return tuple(name for name, contract in CONTRACTS.items() if contract.answer == answer)


def sample_inputs(task: str) -> dict[str, Any]:
    """Keyword arguments of a batched call of ``task`` (two or more items)."""
    return copy.deepcopy(CONTRACTS[task].sample_input())


def sample_finetune_data(task: str, variant: str) -> dict[str, Any]:
    """``params`` for a short finetune of ``task`` with ``variant``: small, clean and learnable."""
    return copy.deepcopy(CONTRACTS[task].variant(variant).sample())
