"""Question answering over a context, optionally conversational (previous questions and answers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.training import History

from bpcore.contracts import CONTRACTS
from bpcore.schemas import QAInput
from bpcore.tasknames import QA as QA_TASK
from bpcore.tasks.base import (
    Task,
    TrainingOptions,
    ValidationSplit,
    finetune_arguments,
)
from bpcore.training.options import finetune_signature


class QA(Task):
    """Answer questions from a context; ``prev_qa`` carries the conversation so far.

    Example::

        qa = bpcore.QA()
        qa("Where does Sally live?", "Sally lives in London.")              # "London"
        qa("What language is it in?", context,
           prev_qa=[("What's Backprop?", "A library that trains models")])

    Finetuning params: ``questions``, ``answers``, ``contexts`` and optionally ``prev_qas``.
    Options: ``max_input_length`` (256), ``max_output_length`` (32).
    """

    contract = CONTRACTS[QA_TASK]

    def __call__(
        self,
        question: str | list[str],
        context: str | list[str],
        prev_qa: list[tuple[str, str]] | list[list[tuple[str, str]]] | None = None,
    ) -> Any:
        """An answer for a question, a list for a list (``context`` may be one for all)."""
        if isinstance(question, str):
            data = {
                "question": [question],
                "context": [context],
                "prev_qa": [[] if prev_qa is None else prev_qa],
            }
            return self._infer(QAInput, data, True)
        count = len(question) if isinstance(question, (list, tuple)) else 0
        contexts = [context] * count if isinstance(context, str) else context
        prev_qas: list[Any] = [[] for _ in range(count)] if prev_qa is None else prev_qa
        return self._infer(QAInput, {"question": question, "context": contexts, "prev_qa": prev_qas}, False)

    @finetune_signature
    def finetune(
        self,
        params: Mapping[str, Any] | None,
        validation_split: ValidationSplit = 0.15,
        max_input_length: int = 256,
        max_output_length: int = 32,
        **options: Unpack[TrainingOptions],
    ) -> History:
        """Finetune on ``{"questions", "answers", "contexts"[, "prev_qas"]}``; see :meth:`Task._finetune`.

        ``max_input_length`` / ``max_output_length``: tokens kept of the input and the answer.

        ``params`` holds that data; ``validation_split`` is the fraction held out to validate on,
        or ``(train_indices, val_indices)``; the other options are the loop's (``epochs``,
        ``batch_size``, ...: ``bpcore.TrainingOptions``).
        """
        return self._finetune(**finetune_arguments(locals()))
