"""Text generation and its finetuning: encoder-decoders (T5, BART) and causal language models (GPT-2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

from bp_hf.base import HFTextGenerationModel, check_positive_length, collate_texts
from bpcore.plugins import TEXT_GENERATION

#: Ignored by the transformers losses: padding, and for causal models the prompt.
IGNORE_INDEX = -100
#: The finetuning params keys of each generative task besides ``output`` (spec 3.5).
LENGTH_KEYS = ("max_input_length", "max_output_length")


def check_lengths(params: Mapping[str, Any]) -> None:
    for key in LENGTH_KEYS:
        check_positive_length(params.get(key), f"params.{key}")


class HFSeq2SeqTGModel(HFTextGenerationModel):
    """An encoder-decoder (T5, BART, ...) for ``text-generation``, and finetuning for it.

    Inference takes spec 3.4.8's keywords (``max_length`` and ``min_length`` count generated
    tokens). Finetuning (``text_to_text``) tokenises each batch together: inputs truncated to
    ``max_input_length``, targets to ``max_output_length``, target padding masked with -100.

    Example::

        import bpcore
        from bp_hf import HFSeq2SeqTGModel

        tg = bpcore.TextGeneration(HFSeq2SeqTGModel("/models/t5-small"))
        tg("translate English to German: Hello", num_beams=2)
        tg.finetune({"input_text": ["I liked it!", "Meh."], "output_text": ["positive", "negative"]})
    """

    auto_class = AutoModelForSeq2SeqLM
    default_tasks: ClassVar[tuple[str, ...]] = (TEXT_GENERATION,)
    #: What each supported task puts before the text (the whole input for text-generation).
    task_prefixes: ClassVar[dict[str, str]] = {TEXT_GENERATION: ""}
    #: ``generate`` keywords per task (text-generation uses :attr:`generation_defaults`).
    task_generation_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    # -- inference ------------------------------------------------------------------------
    def __call__(self, task_input: Mapping[str, Any], task: str = TEXT_GENERATION) -> list[Any]:
        """One generated string per item (a list of them per item with ``num_generations`` above 1)."""
        self.check_task(task)
        if task == TEXT_GENERATION:
            return self.generate(task_input["text"], **self.configure_generation(task_input))
        return self.generate(
            self.inputs_for(task_input, task), defaults=self.task_generation_defaults.get(task)
        )

    def inputs_for(self, task_input: Mapping[str, Any], task: str) -> list[str]:
        """The model's input text for each item of ``task_input`` (its ``text`` with the prefix of ``task``)."""
        prefix = self.task_prefixes[task]
        return [prefix + text for text in task_input["text"]]

    # -- finetuning -----------------------------------------------------------------------
    def training_input(self, params: Mapping[str, Any], task: str) -> str:
        """The model's input text for one finetuning example ``params`` of ``task`` (the same as at inference)."""
        return self.task_prefixes[task] + params["input"]

    def process_batch(self, params: Mapping[str, Any], task: str = TEXT_GENERATION) -> dict[str, Any]:
        """One example as texts and limits; tokenising waits for the batch (:meth:`collate_batch`)."""
        self.check_task(task)
        check_lengths(params)
        return {
            "input": self.training_input(params, task),
            "output": params["output"],
            **{key: params.get(key) for key in LENGTH_KEYS},
        }

    def collate_batch(
        self, items: Sequence[Mapping[str, Any]], task: str = TEXT_GENERATION
    ) -> dict[str, Any]:
        """Tokenise a batch: inputs and targets padded to their longest, target padding masked."""
        inputs, max_input = collate_texts(items, "input", "max_input_length")
        outputs, max_output = collate_texts(items, "output", "max_output_length")
        features = self.tokenize(inputs, max_input)
        targets = self.tokenize(outputs, max_output)
        features["labels"] = targets["input_ids"].masked_fill(targets["attention_mask"] == 0, IGNORE_INDEX)
        return features

    def training_step(self, batch: Mapping[str, Any], task: str = TEXT_GENERATION) -> torch.Tensor:
        """The model's own cross-entropy over the target tokens."""
        return self.model(**batch).loss


class T5(HFSeq2SeqTGModel):
    """Google's T5 for text generation: its small version unless told another (``model_path``).

    The spec's quick start, unchanged::

        from bpcore.models import T5
        from bpcore import TextGeneration

        tg = TextGeneration(T5)
        tg.finetune({"input_text": ["I liked it!", "Meh."], "output_text": ["positive", "negative"]})
    """

    default_model_path = "google-t5/t5-small"


class HFCausalLMTGModel(HFTextGenerationModel):
    """A causal language model (GPT-2 family) for ``text-generation``, and finetuning for it.

    Generation continues each prompt and returns only the continuation; prompts of a batch are
    padded on the left. Finetuning (``text_to_text``) trains on ``prompt + target + end-of-text``
    with the prompt and the padding masked out of the loss, so only the target is learned; after
    it, generating from a prompt gives its target.

    Example::

        import bpcore
        from bp_hf import HFCausalLMTGModel

        tg = bpcore.TextGeneration(HFCausalLMTGModel("/models/gpt2"))
        tg("I like to go to", max_length=20, do_sample=True, top_p=0.9, num_generations=3)
    """

    auto_class = AutoModelForCausalLM
    default_tasks: ClassVar[tuple[str, ...]] = (TEXT_GENERATION,)

    def __call__(self, task_input: Mapping[str, Any], task: str = TEXT_GENERATION) -> list[Any]:
        """The continuation of each prompt (a list of them with ``num_generations`` above 1)."""
        self.check_task(task)
        return self.generate(task_input["text"], **self.configure_generation(task_input))

    def process_batch(self, params: Mapping[str, Any], task: str = TEXT_GENERATION) -> dict[str, Any]:
        """One example as texts and limits; tokenising waits for the batch (:meth:`collate_batch`)."""
        self.check_task(task)
        check_lengths(params)
        return {
            "input": params["input"],
            "output": params["output"],
            **{k: params.get(k) for k in LENGTH_KEYS},
        }

    def collate_batch(
        self, items: Sequence[Mapping[str, Any]], task: str = TEXT_GENERATION
    ) -> dict[str, Any]:
        """``prompt + target + end-of-text`` per example, padded right; labels only on the target."""
        prompts, max_input = collate_texts(items, "input", "max_input_length")
        targets, max_output = collate_texts(items, "output", "max_output_length")
        eos = self.tokenizer.eos_token_id
        room = (max_output or self.max_input_length) - (1 if eos is not None else 0)
        prompt_ids = self.encode(prompts, max_input)
        target_ids = self.encode(targets, max(1, room), add_special_tokens=False)
        sequences, labels = [], []
        for prompt, target in zip(prompt_ids, target_ids):
            answer = target["input_ids"] + ([eos] if eos is not None else [])
            # Keep the sequence within the model's limit by dropping the start of the prompt.
            kept = prompt["input_ids"][
                max(0, len(prompt["input_ids"]) + len(answer) - self.max_input_length) :
            ]
            sequences.append({"input_ids": kept + answer})
            labels.append({"input_ids": [IGNORE_INDEX] * len(kept) + answer})
        features = self.pad(sequences)
        padded_labels = self.pad(labels)["input_ids"]
        features["labels"] = padded_labels.masked_fill(features["attention_mask"] == 0, IGNORE_INDEX)
        return features

    def training_step(self, batch: Mapping[str, Any], task: str = TEXT_GENERATION) -> torch.Tensor:
        """The model's own next-token cross-entropy over the target tokens."""
        return self.model(**batch).loss
