"""HFModel and HFTextGenerationModel: the generic bases over Hugging Face ``transformers``.

Every bp-hf model is an :class:`HFModel`: a transformers model and its tokenizer, loaded from a
hub id or a local folder. This module is the one place where texts become token tensors
(:meth:`HFModel.tokenize` for a batch, :meth:`HFModel.sorted_batches` for many texts at
inference), and where models are saved and loaded back.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from transformers import AutoModelForPreTraining, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from bp_hf.loading import (
    SAVED_FOLDER,
    check_saved_folder,
    check_tokenizer_fits,
    check_weights_fit,
    load_pretrained,
    load_tokenizer,
    save_pretrained,
    strict_weights,
)
from bpcore.plugins import InputError, InputTypeError, PathModel, SavedFolder

#: Tokenizers without a real limit report a huge sentinel as their ``model_max_length``.
UNLIMITED = 1_000_000
#: The input limit assumed when neither the tokenizer nor the config gives one.
DEFAULT_MAX_LENGTH = 512
#: One encoded text: ``{"input_ids": [...]}`` (and ``"token_type_ids"`` for text pairs).
Encoding = dict[str, list[int]]

if TYPE_CHECKING:
    from transformers import GenerationMixin
    from typing_extensions import Unpack

    from bpcore.plugins import ModelIdentity

    class GenerativeModel(PreTrainedModel, GenerationMixin):
        """A transformers model with ``generate`` (each such model class inherits both)."""


class HFModel(PathModel):
    """A Hugging Face ``transformers`` model and its tokenizer (spec 6.11).

    ``model_path`` is a hub id or a local folder written by ``save_pretrained``; the tokenizer
    comes from ``tokenizer_path`` (default: ``model_path``). ``model_class`` and
    ``tokenizer_class`` are the transformers classes whose ``from_pretrained`` loads them;
    ``model_kwargs`` go to the model's ``from_pretrained`` (``{"torch_dtype": "bfloat16"}``).

    Example::

        from transformers import AutoModelForSequenceClassification
        from bp_hf import HFModel

        model = HFModel("/models/my-bert", model_class=AutoModelForSequenceClassification)
        features = model.tokenize(["a text", "another text"], max_length=64)
    """

    #: Texts (or text pairs) per forward pass at inference.
    inference_batch_size: ClassVar[int] = 32
    #: What a family's class changes instead of the constructor: the transformers class that
    #: loads the weights, the tasks its models serve unless told others, and the model loaded
    #: when no ``model_path`` is given (None: one must be given).
    auto_class: ClassVar[Any] = AutoModelForPreTraining
    default_model_path: ClassVar[str | None] = None
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        model_class: Any = None,
        tokenizer_class: Any = AutoTokenizer,
        model_kwargs: Mapping[str, Any] | None = None,
        **identity: Unpack[ModelIdentity],
    ) -> None:
        model_path = model_path if model_path is not None else self.default_model_path
        if model_path is None:
            raise InputTypeError(f"{type(self).__name__} needs a model_path", field="model_path")
        model_class = model_class or self.auto_class
        label = identity.get("name") or str(model_path)

        def init_model(path: str) -> Any:
            return load_pretrained(model_class.from_pretrained, path, label, "model", **(model_kwargs or {}))

        def init_tokenizer(path: str) -> Any:
            return load_tokenizer(tokenizer_class.from_pretrained, path, label)

        super().__init__(
            str(model_path),
            init_model=init_model,
            tokenizer_path=str(tokenizer_path) if tokenizer_path is not None else None,
            init_tokenizer=init_tokenizer,
            **identity,
        )
        self.check_loaded()
        # The whole module, not only the transformers model: tasks restore the mode they found.
        self.eval()

    def check_loaded(self) -> None:
        """Refuse, with a :class:`~bpcore.ModelLoadError`, a loaded model this class cannot use (default: any will do)."""

    # -- tokenising: the one place texts become tensors -------------------------------------
    @property
    def max_input_length(self) -> int:
        """How many tokens the model reads at most (the tokenizer's limit, else the config's)."""
        limits = [getattr(self.tokenizer, "model_max_length", None)]
        config = self.model.config
        limits += [getattr(config, key, None) for key in ("max_position_embeddings", "n_positions")]
        usable = [int(limit) for limit in limits if isinstance(limit, int) and 0 < limit < UNLIMITED]
        return min(usable) if usable else DEFAULT_MAX_LENGTH

    def _limit(self, max_length: int | None) -> int:
        return min(max_length or self.max_input_length, self.max_input_length)

    def encode(
        self,
        texts: Sequence[str],
        max_length: int | None = None,
        pairs: Sequence[str] | None = None,
        add_special_tokens: bool = True,
        truncation: bool = True,
    ) -> list[Encoding]:
        """Each of ``texts`` (paired with ``pairs``, if given) as unpadded token lists.

        ``truncation`` cuts each to ``max_length`` tokens (default: the model's limit);
        ``add_special_tokens`` adds the model's start and end tokens. An item is ``{"input_ids": [...]}``, plus ``"token_type_ids"`` for pairs when the model
        takes them (BERT-style NLI models tell premise from hypothesis by them).
        """
        encoded = self.tokenizer(
            list(texts),
            list(pairs) if pairs is not None else None,
            truncation=("only_first" if pairs is not None else True) if truncation else False,
            max_length=self._limit(max_length) if truncation else None,
            add_special_tokens=add_special_tokens,
            return_token_type_ids=pairs is not None and self.takes_token_types,
            return_attention_mask=False,
        )
        keys = [key for key in ("input_ids", "token_type_ids") if key in encoded]
        return [dict(zip(keys, values)) for values in zip(*(encoded[key] for key in keys))]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` character span of each token of ``text`` (no special tokens)."""
        return list(
            self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        )

    @property
    def takes_token_types(self) -> bool:
        """Whether text pairs carry ``token_type_ids``: when the tokenizer makes them for this model."""
        return "token_type_ids" in getattr(self.tokenizer, "model_input_names", ()) and (
            "token_type_ids" in inspect.signature(self.model.forward).parameters
        )

    def pad(self, items: Sequence[Encoding], padding_side: str = "right") -> dict[str, torch.Tensor]:
        """Pad encoded ``items`` to the longest: ``input_ids``, ``attention_mask`` (and ``token_type_ids``).

        ``padding_side`` is ``"right"``, or ``"left"`` for a causal model that generates after the prompt.
        """
        longest = max(len(item["input_ids"]) for item in items)
        pad_values = {"input_ids": self.pad_token_id, "token_type_ids": 0}
        keys = [key for key in pad_values if key in items[0]]
        batch = {key: torch.full((len(items), longest), pad_values[key], dtype=torch.long) for key in keys}
        attention_mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, item in enumerate(items):
            size = len(item["input_ids"])
            span = slice(longest - size, longest) if padding_side == "left" else slice(0, size)
            for key in keys:
                batch[key][row, span] = torch.as_tensor(item[key], dtype=torch.long)
            attention_mask[row, span] = 1
        batch["attention_mask"] = attention_mask
        return {key: value.to(self.device) for key, value in batch.items()}

    def tokenize(
        self,
        texts: Sequence[str],
        max_length: int | None = None,
        pairs: Sequence[str] | None = None,
        padding_side: str = "right",
    ) -> dict[str, torch.Tensor]:
        """One padded batch of ``texts`` (paired with ``pairs``, if given), truncated to ``max_length`` tokens.

        ``padding_side`` as :meth:`pad` takes it.
        """
        return self.pad(self.encode(texts, max_length, pairs), padding_side)

    def sorted_batches(
        self,
        items: Sequence[Encoding],
        batch_size: int | None = None,
        padding_side: str = "right",
    ) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        """``(indices, padded batch)`` over encoded ``items`` sorted by length, so each batch pads little.

        ``batch_size`` defaults to :attr:`inference_batch_size`; ``padding_side`` as :meth:`pad` takes it.
        """
        batch_size = batch_size or self.inference_batch_size
        order = sorted(range(len(items)), key=lambda index: len(items[index]["input_ids"]), reverse=True)
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            yield indices, self.pad([items[index] for index in indices], padding_side)

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:  # GPT-2 and friends have no padding token: pad with end-of-text (masked anyway)
            pad = self.tokenizer.eos_token_id
        return int(pad) if pad is not None else 0

    # -- saving ---------------------------------------------------------------------------
    def save_files(self, directory: Path) -> dict[str, Any]:
        """Write the model and tokenizer with ``save_pretrained`` into ``directory / "transformers"``."""
        return {"folder": save_pretrained(self.model, self.tokenizer, directory)}

    @classmethod
    def from_saved(
        cls, directory: SavedFolder, config: Mapping[str, Any], device: str | None = None
    ) -> HFModel:
        """Load a model written by :meth:`save_files`, offline, from inside the saved folder only.

        The transformers folder is checked before transformers reads it, and the network the
        saved config describes against the saved weights (see :mod:`bp_hf.loading`): a folder
        that points elsewhere, lacks a file, asks for sizes beyond a bound or holds weights that
        do not fit is a ModelLoadError, never a model built from defaults.
        """
        folder = SavedFolder.of(directory)
        inner = config.get("folder", SAVED_FOLDER)
        # "." is the folder itself: a plain save_pretrained folder bpcore was given (bp_hf.folders).
        folder = folder if inner == "." else folder.folder(inner)
        weights = check_saved_folder(folder)
        check_weights_fit(folder, cls.auto_class, weights)
        with strict_weights():
            model = cls(model_path=str(folder), device=device)
        check_tokenizer_fits(model.tokenizer, model.model, folder.label)
        return model


#: Spec 3.4.8 keywords, and the ``generate`` argument each becomes.
GENERATION_KEYWORDS = {
    "min_length": "min_new_tokens",
    "max_length": "max_new_tokens",
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "repetition_penalty": "repetition_penalty",
    "length_penalty": "length_penalty",
    "num_beams": "num_beams",
    "num_generations": "num_return_sequences",
    "do_sample": "do_sample",
}
SAMPLING_KEYWORDS = ("temperature", "top_k", "top_p")


def generation_arguments(options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``generate`` keywords from spec 3.4.8 options (``max_length`` counts generated tokens only).

    Sampling is on when asked (``do_sample``) or, if ``do_sample`` is left out, when a sampling
    option (``temperature``, ``top_k``, ``top_p``) is set or several generations are wanted from
    one beam. Without sampling, several generations come from a beam search with at least as many
    beams, and the sampling options are dropped (they would be ignored).
    """
    unknown = sorted(set(options) - set(GENERATION_KEYWORDS))
    if unknown:
        raise InputError(
            f"unknown generation option {unknown[0]!r}; options are {sorted(GENERATION_KEYWORDS)}",
            field=f"input.{unknown[0]}",
        )
    options = _spec_values(options)
    arguments = dict(defaults)
    arguments.update({GENERATION_KEYWORDS[key]: value for key, value in options.items() if value is not None})
    generations = arguments.get("num_return_sequences", 1)
    beams = arguments.get("num_beams", 1)
    if options.get("do_sample") is None:
        wants_sampling = any(options.get(key) is not None for key in SAMPLING_KEYWORDS)
        arguments["do_sample"] = wants_sampling or generations > beams
    if not arguments["do_sample"]:
        for key in SAMPLING_KEYWORDS:
            arguments.pop(key, None)
        if generations > beams:
            arguments["num_beams"] = generations
    return arguments


def _spec_values(options: Mapping[str, Any]) -> dict[str, Any]:
    """Spec 3.4.8's values as ``generate`` takes them: temperature 0 is no randomness, top_k 0 no limit."""
    values = dict(options)
    if values.get("temperature") == 0:
        values.pop("temperature")
        values["do_sample"] = False  # no randomness, whatever else asks for sampling
    if values.get("top_k") is not None:
        values["top_k"] = int(values["top_k"])
        if values["top_k"] == 0:
            values.pop("top_k")
    return values


class HFTextGenerationModel(HFModel):
    """A transformers model with ``generate``: batched, padded generation for any prompt list.

    Prompts are generated in length-sorted batches of :attr:`inference_batch_size`; causal models
    pad on the left (so every prompt ends where generation starts), encoder-decoders on the right.
    A batch gives the same greedy answers as single calls.

    Example::

        from transformers import AutoModelForCausalLM
        model = HFTextGenerationModel("/models/gpt2", model_class=AutoModelForCausalLM)
        model.generate(["Once upon a time", "In a galaxy"], max_length=20, num_beams=2)
    """

    inference_batch_size = 16
    model: GenerativeModel
    #: ``generate`` keywords used unless the caller sets them.
    generation_defaults: ClassVar[dict[str, Any]] = {"max_new_tokens": 50}

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

    def generate(
        self,
        texts: Sequence[str],
        defaults: Mapping[str, Any] | None = None,
        max_input_length: int | None = None,
        with_scores: bool = False,
        **options: Any,
    ) -> list[Any]:
        """Generate from each of ``texts``: a string per text, a list of ``num_generations`` strings if above 1.

        Each prompt is cut to ``max_input_length`` tokens (default: the model's limit). ``options`` are spec 3.4.8's keywords; ``defaults`` are ``generate`` keywords the options
        override. With ``with_scores``, each answer is ``(text, mean token log-probability)``.
        """
        arguments = generation_arguments(options, {**self.generation_defaults, **(defaults or {})})
        generations = int(arguments.get("num_return_sequences", 1))
        ids = self.encode(texts, max_input_length)
        if not self.is_encoder_decoder:
            # An empty prompt gives a causal model nothing to continue: start it at start-of-text.
            start = (
                self.tokenizer.bos_token_id
                if self.tokenizer.bos_token_id is not None
                else self.tokenizer.eos_token_id
            )
            for item in ids:
                if not item["input_ids"] and start is not None:
                    item["input_ids"] = [start]
        answers: list[Any] = [None] * len(ids)
        side = "right" if self.is_encoder_decoder else "left"
        with torch.inference_mode():
            for indices, batch in self.sorted_batches(ids, padding_side=side):
                texts_out, scores = self._generate_batch(batch, arguments, with_scores)
                for position, index in enumerate(indices):
                    rows = range(position * generations, (position + 1) * generations)
                    found = [(texts_out[row], scores[row]) if with_scores else texts_out[row] for row in rows]
                    answers[index] = found if generations > 1 else found[0]
        return answers

    def _generate_batch(
        self, batch: Mapping[str, torch.Tensor], arguments: Mapping[str, Any], with_scores: bool
    ) -> tuple[list[str], list[float]]:
        output = self.model.generate(
            **batch,
            **arguments,
            pad_token_id=self.pad_token_id,
            return_dict_in_generate=True,
            output_scores=with_scores,
        )
        sequences = output.sequences
        # Causal models return the prompt too: keep what was generated after it.
        new_tokens = sequences if self.is_encoder_decoder else sequences[:, batch["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        scores: list[float] = []
        if with_scores:
            scores = self._sequence_scores(output, new_tokens).tolist()
        return [text.strip() if self.is_encoder_decoder else text for text in texts], scores

    def _sequence_scores(self, output: Any, new_tokens: torch.Tensor) -> torch.Tensor:
        if getattr(output, "sequences_scores", None) is not None:  # beam search: already length-normalised
            return output.sequences_scores.float()
        # transformers types this method's self as its GenerativePreTrainedModel protocol, which
        # wants device and dtype settable where PreTrainedModel has read-only properties.
        transition = self.model.compute_transition_scores(  # type: ignore[misc]
            output.sequences, output.scores, normalize_logits=True
        )
        generated = new_tokens[:, -transition.shape[1] :]
        counted = generated != self.pad_token_id
        if self.tokenizer.eos_token_id is not None:  # the end of text counts, the padding after it does not
            counted |= generated == self.tokenizer.eos_token_id
        counted &= torch.isfinite(transition)
        total = torch.where(counted, transition, torch.zeros_like(transition)).sum(dim=1)
        return total / counted.sum(dim=1).clamp(min=1)

    def configure_generation(self, task_input: Mapping[str, Any]) -> dict[str, Any]:
        """The spec 3.4.8 options of a text-generation ``task_input`` (everything but ``text``)."""
        return {key: value for key, value in task_input.items() if key != "text" and value is not None}


def collate_texts(
    items: Sequence[Mapping[str, Any]], key: str, length_key: str
) -> tuple[list[str], int | None]:
    """The ``key`` texts of a batch of processed items and the smallest ``length_key`` among them."""
    lengths = [item[length_key] for item in items if item.get(length_key) is not None]
    return [item[key] for item in items], (min(lengths) if lengths else None)


def check_positive_length(value: Any, field: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(f"must be a positive integer, got {value!r}", field=field)
