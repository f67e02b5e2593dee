"""HFSeqTCModel: any transformers encoder finetuned as a classifier of the user's own labels."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import torch
from transformers import AutoModelForSequenceClassification

from bp_hf.base import check_positive_length, collate_texts
from bp_hf.nli import head_size
from bp_hf.openvino_backend import HFClassifier
from bpcore.plugins import TEXT_CLASSIFICATION, InputError, learned_label_answers

#: The names transformers gives classes nobody named: such a head has learned no labels.
PLACEHOLDER_LABEL = re.compile(r"LABEL_\d+")
SINGLE_LABEL: Final = "single_label_classification"
MULTI_LABEL: Final = "multi_label_classification"


class HFSeqTCModel(HFClassifier):
    """A sequence classifier (BERT, XLNet, DeBERTa, ...) finetuned on the user's labels.

    ``pre_finetuning`` builds a fresh classification head for the labels the task passes (the
    encoder's weights are kept); the labels go into the transformers config (``id2label``,
    ``label2id``, ``problem_type``), so they survive :func:`bpcore.save` / :func:`bpcore.load`.
    ``training_step`` returns logits: the task applies cross-entropy, or for ``multi_label`` a
    sigmoid loss per label. Afterwards ``tc(text)`` gives ``{label: probability}``
    over the learned labels: a softmax (summing to 1), or for a multi-label model an independent
    sigmoid per label. Passing ``labels`` keeps a subset of the learned labels. ``backend="openvino"``
    computes the logits with OpenVINO (:class:`~bp_hf.openvino_backend.HFClassifier`); finetuning
    trains the torch weights, and the next inference exports them anew.

    Example::

        import bpcore
        from bp_hf import HFSeqTCModel

        tc = bpcore.TextClassification(HFSeqTCModel("/models/bert-base-uncased"))
        tc.finetune({"texts": ["The vote passed", "The team won"], "labels": ["politics", "sports"]})
        tc("Parliament debated the bill")           # {"politics": 0.9, "sports": 0.1}
    """

    optimal_batch_size = 16

    auto_class = AutoModelForSequenceClassification
    default_tasks = (TEXT_CLASSIFICATION,)

    @property
    def labels(self) -> list[str]:
        """The labels the head was finetuned on, in head order (empty before finetuning)."""
        id2label = self.model.config.id2label or {}  # keys are ints, or strings in an old config
        names = [name for _, name in sorted(id2label.items(), key=lambda item: int(item[0]))]
        return [] if all(PLACEHOLDER_LABEL.fullmatch(str(name)) for name in names) else names

    @property
    def is_multi_label(self) -> bool:
        return self.model.config.problem_type == MULTI_LABEL

    # -- inference ------------------------------------------------------------------------
    def __call__(
        self, task_input: Mapping[str, Any], task: str = TEXT_CLASSIFICATION
    ) -> list[dict[str, float]]:
        """``{label: probability}`` per text over the learned labels (or the subset ``labels`` names)."""
        self.check_task(task)
        learned = self.labels
        if not learned:
            raise InputError(
                f"{self.name or self.model_path!r} has not been finetuned on labels yet: finetune it first "
                "(zero-shot labels need an NLI model such as HFNLIModel)",
                field="input.labels",
            )
        multi_label = self.is_multi_label or bool(task_input.get("multi_label", False))
        return learned_label_answers(
            self.logits(task_input["text"]),
            learned,
            multi_label=multi_label,
            wanted=task_input.get("labels"),
            top_k=int(task_input.get("top_k") or 0),
        )

    def logits(self, texts: Sequence[str], max_length: int | None = None) -> torch.Tensor:
        """``[texts, labels]`` logits of ``texts``, each cut to ``max_length`` tokens, in length-sorted batches."""
        encoded = self.encode(texts, max_length)
        logits = torch.empty((len(encoded), head_size(self.model)))
        with torch.inference_mode():
            for indices, batch in self.sorted_batches(encoded):
                logits[indices] = self.classifier_logits(batch)
        return logits

    # -- finetuning -----------------------------------------------------------------------
    def pre_finetuning(self, labels: Mapping[int, str], multi_label: bool = False, **_: Any) -> None:
        """Build a classification head for ``labels`` (``{index: label}``) unless it is already the one."""
        # Also here, not only in training_step: a finetune with its own step= may never call that.
        self.stale_export()
        id2label = {int(index): str(label) for index, label in labels.items()}
        problem_type: Literal["single_label_classification", "multi_label_classification"] = (
            MULTI_LABEL if multi_label else SINGLE_LABEL
        )
        config = self.model.config
        if self.labels == [id2label[i] for i in sorted(id2label)] and config.problem_type == problem_type:
            return  # finetuning again on the same labels: keep the trained head
        new_config = copy.deepcopy(config)
        new_config.id2label = id2label
        new_config.label2id = {label: index for index, label in id2label.items()}
        new_config.num_labels = len(id2label)
        new_config.problem_type = problem_type
        fresh = AutoModelForSequenceClassification.from_config(new_config)
        # Only the encoder carries over; the head (whatever its name in this architecture) starts fresh.
        prefix = f"{fresh.base_model_prefix}."
        encoder = {key: value for key, value in self.model.state_dict().items() if key.startswith(prefix)}
        fresh.load_state_dict(encoder, strict=False)
        self.model = fresh.to(device=self.device, dtype=next(self.model.parameters()).dtype)
        self.model.train(self.training)

    def process_batch(self, params: Mapping[str, Any], task: str = TEXT_CLASSIFICATION) -> dict[str, Any]:
        """One text; tokenising waits for the batch (the core holds the labels as targets)."""
        self.check_task(task)
        check_positive_length(params.get("max_length"), "params.max_length")
        index = dict(params["class_to_idx"])
        learned = self.labels
        if sorted(index, key=index.__getitem__) != learned:
            raise InputError(
                f"the labels {sorted(index)} differ from the head's {learned}: call pre_finetuning(labels=...) first",
                field="params.labels",
            )
        return {"text": params["inputs"], "max_length": params.get("max_length")}

    def collate_batch(
        self, items: Sequence[Mapping[str, Any]], task: str = TEXT_CLASSIFICATION
    ) -> dict[str, Any]:
        """Tokenise a batch together, padded to its longest text."""
        texts, max_length = collate_texts(items, "text", "max_length")
        return self.tokenize(texts, max_length)

    def training_step(self, batch: Mapping[str, Any], task: str = TEXT_CLASSIFICATION) -> torch.Tensor:
        """The ``[batch, labels]`` logits: the core applies cross-entropy, or a sigmoid per label."""
        self.stale_export()  # the weights are about to change: exported anew at the next inference
        return self.model(**batch).logits
