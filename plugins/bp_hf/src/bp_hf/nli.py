"""HFNLIModel: zero-shot text classification with any natural-language-inference model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from bp_hf.openvino_backend import HFClassifier
from bpcore.plugins import TEXT_CLASSIFICATION, InputError, ModelLoadError, ranked

#: The hypothesis each label becomes, as in transformers' zero-shot-classification pipeline.
HYPOTHESIS_TEMPLATE = "This example is {}."


def nli_label_index(label2id: Mapping[str, int | str], prefix: str) -> int | None:
    """The class index whose name starts with ``prefix`` (``"entail"``, ``"contra"``), case-insensitively."""
    for label, index in label2id.items():
        if label.lower().startswith(prefix):
            return int(index)
    return None


def head_size(model: PreTrainedModel) -> int:
    """How many classes a transformers classification model outputs."""
    size = model.config.num_labels
    if size is None:  # transformers gives every classification head an id2label; a bad folder may not
        raise ModelLoadError(f"{type(model).__name__} has no classification head: its config has no id2label")
    return size


class HFNLIModel(HFClassifier):
    """Zero-shot ``text-classification`` from a sequence classifier trained on NLI (MNLI, XNLI).

    Each text is the premise and each label becomes the hypothesis ``"This example is
    {label}."``; the entailment and contradiction classes are found by name in the model's
    ``label2id``, whatever their order. Single-label (the default): the softmax of the
    entailment logits across the labels of a text, which sums to 1. ``multi_label=True``: for
    each label on its own, the softmax of entailment against contradiction. Every text×label
    pair of a call runs in length-sorted batches of :attr:`inference_batch_size`. ``backend="openvino"``
    computes the logits with OpenVINO (:class:`~bp_hf.openvino_backend.HFClassifier`).

    Example::

        import bpcore
        from bp_hf import HFNLIModel

        tc = bpcore.TextClassification(HFNLIModel("/models/deberta-base-mnli"))
        tc("I am mad because my product broke.", ["product issue", "nature"])
        # {"product issue": 0.98, "nature": 0.02}
    """

    auto_class = AutoModelForSequenceClassification
    default_tasks = (TEXT_CLASSIFICATION,)

    def check_loaded(self) -> None:
        """An NLI model: its label2id names entailment and contradiction classes."""
        label2id: dict[str, int | str] = dict(self.model.config.label2id or {})
        entailment = nli_label_index(label2id, "entail")
        contradiction = nli_label_index(label2id, "contra")
        if entailment is None or contradiction is None:
            raise ModelLoadError(
                f"cannot use {self.name or self.model_path!r} for zero-shot classification: its label2id {label2id} "
                "names no entailment and contradiction classes (is it an NLI model?)"
            )
        self.entailment_index = entailment
        self.contradiction_index = contradiction
        self.hypothesis_template = HYPOTHESIS_TEMPLATE

    def __call__(
        self, task_input: Mapping[str, Any], task: str = TEXT_CLASSIFICATION
    ) -> list[dict[str, float]]:
        """``{label: probability}`` per text, highest first, ``top_k`` of them (0: all)."""
        self.check_task(task)
        texts, labels = task_input["text"], task_input.get("labels")
        if labels is None:
            raise InputError(
                "a zero-shot model needs labels to choose from (finetuned labels need HFSeqTCModel)",
                field="input.labels",
            )
        multi_label = bool(task_input.get("multi_label", False))
        probabilities = self.classify(texts, labels, multi_label=multi_label)
        top_k = int(task_input.get("top_k") or 0)
        return [ranked(item, top_k) for item in probabilities]

    def example_batch(self) -> dict[str, torch.Tensor]:
        """Premise and hypothesis pairs, as :meth:`nli_logits` batches them (to export the classifier with)."""
        hypotheses = [self.hypothesis_template.format(label) for label in ("a label", "another label")]
        return self.tokenize(["An example text.", "Another, rather longer example text."], pairs=hypotheses)

    def nli_logits(self, texts: Sequence[str], labels: Sequence[Sequence[str]]) -> list[torch.Tensor]:
        """``[labels, nli classes]`` logits per text of ``texts`` against its list of ``labels``.

        Every text×label pair is scored, in length-sorted batches.
        """
        premises, hypotheses = [], []
        for text, text_labels in zip(texts, labels):
            for label in text_labels:
                premises.append(text)
                hypotheses.append(self.hypothesis_template.format(label))
        pairs = self.encode(premises, pairs=hypotheses)
        logits = torch.empty((len(pairs), head_size(self.model)))
        with torch.inference_mode():
            for indices, batch in self.sorted_batches(pairs):
                logits[indices] = self.classifier_logits(batch)
        per_text = []
        start = 0
        for text_labels in labels:
            per_text.append(logits[start : start + len(text_labels)])
            start += len(text_labels)
        return per_text

    def calculate_probability(self, text: str, labels: Sequence[str]) -> list[float]:
        """Spec 6.4.1: for one ``text``, the probability that each label is true, on its own (in ``labels`` order).

        Each label's entailment against contradiction, as Backprop computed it (``classify`` with
        ``multi_label=True``). Example: ``model.calculate_probability("I love it", ["positive", "negative"])``.
        """
        scores = self.classify([text], [list(labels)], multi_label=True)[0]
        return [scores[label] for label in labels]

    def classify(
        self, texts: Sequence[str], labels: Sequence[Sequence[str]], multi_label: bool = False
    ) -> list[dict[str, float]]:
        """``{label: probability}`` per text of ``texts`` over its list of ``labels`` (unsorted).

        Single-label: a softmax of the entailment scores over the labels; ``multi_label=True``:
        each label's entailment against contradiction, on its own.
        """
        results = []
        for text_labels, logits in zip(labels, self.nli_logits(texts, labels)):
            if multi_label:
                pair = logits[:, [self.contradiction_index, self.entailment_index]]
                probabilities = pair.softmax(dim=-1)[:, 1]
            else:
                probabilities = logits[:, self.entailment_index].softmax(dim=0)
            results.append(dict(zip(text_labels, probabilities.tolist())))
        return results
