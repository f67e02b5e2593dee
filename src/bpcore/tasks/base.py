"""What every task shares: choosing its model, validating input, finetuning, saving, listing."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar, Union

import attrs

from bpcore.errors import (
    BpcoreError,
    InputError,
    InputTypeError,
    ModelProtocolError,
    TaskNotSupportedError,
    TrainingError,
)
from bpcore.schemas import structure

if TYPE_CHECKING:
    import torch

    from bpcore.batching import Example
    from bpcore.training import History

T = TypeVar("T")

#: ``validation_split``: a fraction held out, or ``(train_indices, val_indices)``.
ValidationSplit = Union[float, "tuple[Sequence[int], Sequence[int]]"]
#: ``step(batch, batch_idx)`` returns a batch's loss.
Step = Callable[[Any, int], "torch.Tensor"]
#: ``configure_optimizers()`` returns the optimizer.
ConfigureOptimizers = Callable[[], "torch.optim.Optimizer"]


class TrainingOptions(TypedDict, total=False):
    """Keyword arguments every task's ``finetune`` takes beyond the spec's, documented once.

    - ``seed``: makes a run reproducible (``history.seed`` holds the one used).
    - ``progress``: show a progress bar (default: only when output is a terminal).
    - ``gradient_accumulation_steps``: batches whose gradients add up before each optimizer step.
    - ``mixed_precision``: ``"no"`` (default), ``"fp16"`` (GPUs) or ``"bf16"``, handed to Accelerate.
    - ``max_grad_norm``: clip the gradients' total norm to this before each optimizer step.
    - ``lr_scheduler``: ``"constant"`` (default), ``"linear"`` or ``"cosine"`` decay of the
      learning rate, after a linear warm-up over ``warmup_ratio`` (default 0) of the steps.
    - ``checkpoint_dir``: save a checkpoint there at each epoch end, keeping the last
      ``keep_checkpoints`` (default 2); ``resume=True`` continues the run saved there.
    - ``log_with``: Accelerate trackers (``"tensorboard"``, ``"wandb"``, ...) that get the
      per-step and per-epoch losses and the learning rate, written under ``log_dir`` (default ``runs``).

    Example::

        history = bpcore.TextVectorisation().finetune(
            {"texts": texts, "groups": groups}, variant="triplet", epochs=10,
            lr_scheduler="linear", warmup_ratio=0.1,
            checkpoint_dir="checkpoints", resume=True, log_with="tensorboard",
        )
        bpcore.plot_history(history, "loss.png")
    """

    seed: int
    progress: bool
    gradient_accumulation_steps: int
    mixed_precision: str
    max_grad_norm: float
    lr_scheduler: str
    warmup_ratio: float
    checkpoint_dir: str | os.PathLike[str]
    resume: bool
    keep_checkpoints: int
    log_with: str | list[str]
    log_dir: str | os.PathLike[str]


def finetune_arguments(frame_locals: dict[str, Any]) -> dict[str, Any]:
    """A task's ``finetune`` arguments (its ``locals()``) as keywords for :meth:`Task._finetune`."""
    arguments = {
        key: value for key, value in frame_locals.items() if key not in ("self", "options", "__class__")
    }
    unknown = set(frame_locals.get("options") or {}) - set(TrainingOptions.__annotations__)
    if unknown:
        raise InputTypeError(
            f"unknown finetuning option(s) {sorted(unknown)}; beyond its own arguments finetune takes "
            f"{sorted(TrainingOptions.__annotations__)}",
            field=sorted(unknown)[0],
        )
    return {**arguments, **(frame_locals.get("options") or {})}


#: How a variant turns a model's ``training_step`` output into a loss.
LOSS_FROM_MODEL = "model"
LOSS_CROSS_ENTROPY = "cross_entropy"
LOSS_BINARY_CROSS_ENTROPY = "binary_cross_entropy"
LOSS_COSINE = "cosine_similarity"
LOSS_TRIPLET = "triplet"


@attrs.frozen
class Variant:
    """One way to finetune a task: its params schema, how rows become examples, its loss."""

    params: type
    examples: Callable[[Any, Mapping[str, Any]], list[Example]]
    loss: str
    #: Batches keep same-group examples together (for triplet losses).
    grouped: bool = False


class Task:
    """Base class of the nine tasks; a task is a thin, validating front for a model.

    ``model`` is ``None`` (the task's default), a registered name or alias, the name or path
    of a model saved with :func:`bpcore.save`, or a model object.
    """

    task: ClassVar[str]
    #: Each task defines ``__call__`` with the spec's signature.
    __call__: Callable[..., Any]
    #: Finetuning variants; the first is the default.
    variants: ClassVar[dict[str, Variant]] = {}
    #: Each task defines ``finetune`` with the spec's signature and calls :meth:`_finetune`.
    finetune: Callable[..., History]

    def __init__(self, model: Any = None, device: str | None = None) -> None:
        from bpcore.devices import resolve_device

        resolve_device(device)  # a device that does not exist here is an InputError naming ``device``
        self.device = device
        self.model = self._resolve_model(model, device)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={getattr(self.model, 'name', None) or type(self.model).__name__!r})"
        )

    # -- models ---------------------------------------------------------------------------
    def _resolve_model(self, model: Any, device: str | None) -> Any:
        from bpcore.models.auto import resolve_model

        self._spec = None
        if model is None or isinstance(model, str):
            model, self._spec = resolve_model(model, task=self.task, device=device)
        elif isinstance(model, type):
            from bpcore.protocol import ready_for_inference

            model = ready_for_inference(model(device=device))
        tasks = getattr(model, "tasks", None)
        if tasks is not None and self.task not in tasks:
            raise TaskNotSupportedError(
                f"{type(model).__name__} does not support {self.task!r}; it supports {list(tasks)}"
            )
        if not callable(model):
            raise InputTypeError(f"a model must be callable, got {type(model).__name__}", field="model")
        return model

    @classmethod
    def list_models(
        cls, return_dict: bool = False, display: bool = False, limit: int | None = None
    ) -> list[dict[str, Any]] | dict[str, dict[str, Any]] | None:
        """The registered models that support this task."""
        from bpcore.models.auto import AutoModel

        return AutoModel.list_models(task=cls.task, return_dict=return_dict, display=display, limit=limit)

    # -- inference ------------------------------------------------------------------------
    def _infer(self, schema: type[T], data: dict[str, Any], single: bool, **model_kwargs: Any) -> Any:
        from bpcore.protocol import check_answers, describe_model, inference

        for key, value in model_kwargs.items():
            if not isinstance(value, bool):
                raise InputTypeError(f"expected true or false, got {type(value).__name__}", field=key)
        value = structure(data, schema, root="input")
        payload = attrs.asdict(value, recurse=False)  # type: ignore[arg-type]
        if "image" in payload:
            from bpcore.images import load_images

            payload["image"] = load_images(payload["image"], "input.image")
        plugin = self._spec.plugin if self._spec is not None else None
        with inference(self.model):
            try:
                output = self.model(payload, task=self.task, **model_kwargs)
            except BpcoreError:
                raise
            except Exception as error:  # the model's own bug: one error type, naming model and plugin
                raise ModelProtocolError(
                    f"{describe_model(self.model, plugin)} failed on {self.task}: "
                    f"{type(error).__name__}: {str(error)[:300]}"
                ) from error
        count = len(next(iter(payload.values())))
        answers = check_answers(
            output,
            count,
            task=self.task,
            model=self.model,
            plugin=plugin,
            return_tensor=bool(model_kwargs.get("return_tensor")),
        )
        return answers[0] if single else answers

    # -- finetuning -----------------------------------------------------------------------
    def _finetune(
        self,
        params: Mapping[str, Any],
        *,
        variant: str | None = None,
        validation_split: float | tuple[Sequence[int], Sequence[int]] = 0.15,
        epochs: int = 20,
        batch_size: int | None = None,
        optimal_batch_size: int | None = None,
        early_stopping_epochs: int = 1,
        train_dataloader: Any = None,
        val_dataloader: Any = None,
        step: Callable[[Any, int], torch.Tensor] | None = None,
        configure_optimizers: Callable[[], torch.optim.Optimizer] | None = None,
        seed: int | None = None,
        progress: bool | None = None,
        gradient_accumulation_steps: int | None = None,
        mixed_precision: str | None = None,
        max_grad_norm: float | None = None,
        lr_scheduler: str | None = None,
        warmup_ratio: float | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool | None = None,
        keep_checkpoints: int | None = None,
        log_with: str | list[str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        **task_options: Any,
    ) -> History:
        """Finetune the task's model on ``params``; return the per-epoch :class:`~bpcore.training.History`.

        What every task's ``finetune`` does (each names its own options and their defaults):

        - ``validation_split``: a fraction held out for validation, or ``(train_indices, val_indices)``.
        - ``epochs``, ``batch_size`` (None: start at the model's ``optimal_batch_size`` or
          ``optimal_batch_size``, and shrink on out-of-memory errors), ``early_stopping_epochs``
          (epochs without a better validation loss before stopping; 0: never stop early).
        - ``train_dataloader`` / ``val_dataloader``: your own batches instead of ``params``'.
        - ``step(batch, batch_idx)``: your own loss; ``configure_optimizers()``: your own optimizer.
        - :class:`TrainingOptions` (``seed``).

        After finetuning, the weights of the epoch with the best validation loss are loaded and
        the model is left in ``eval()`` mode.
        """
        from bpcore.batching import Collator, ExampleDataset
        from bpcore.images import decode_view
        from bpcore.model_lock import lock_for
        from bpcore.training import check_fit_options, fit

        name, chosen = self._variant(variant)
        options = self._options(task_options)
        fit_options = {
            "validation_split": validation_split,
            "epochs": epochs,
            "batch_size": batch_size,
            "optimal_batch_size": optimal_batch_size,
            "early_stopping_epochs": early_stopping_epochs,
            "train_dataloader": train_dataloader,
            "val_dataloader": val_dataloader,
            "step": step,
            "configure_optimizers": configure_optimizers,
            "seed": seed,
            "progress": progress,
            "gradient_accumulation_steps": gradient_accumulation_steps,
            "mixed_precision": mixed_precision,
            "max_grad_norm": max_grad_norm,
            "lr_scheduler": lr_scheduler,
            "warmup_ratio": warmup_ratio,
            "checkpoint_dir": checkpoint_dir,
            "resume": resume,
            "keep_checkpoints": keep_checkpoints,
            "log_with": log_with,
            "log_dir": log_dir,
        }
        # Every keyword is checked before the data (which may open many images) and before training.
        check_fit_options(**fit_options)
        if not self._can_finetune():
            raise TaskNotSupportedError(
                f"{getattr(self.model, 'name', None) or type(self.model).__name__} cannot be finetuned for {self.task!r}; "
                f"finetunable models: {[m['name'] for m in self.list_models() if self.task in m['finetunable']]}"  # type: ignore[index,union-attr]
            )
        data = self.check_params(params, name)
        examples = chosen.examples(data, options)
        check_fit_options(**fit_options, count=len(examples))  # explicit validation indices fit the data
        # The model is ours alone from its new head to its best weights: calls in flight end first,
        # calls made meanwhile wait (never answered by, nor switching modes of, a training model).
        with lock_for(self.model).writing():
            # Seeded before pre_finetuning, so a head it builds starts the same for the same seed;
            # a resumed run reuses the seed of the run it continues.
            if seed is None and resume:
                from bpcore.checkpoints import checkpointed_seed

                seed = checkpointed_seed(checkpoint_dir)
            seed = random.randrange(2**31) if seed is None else seed
            torch_seed(seed)
            self._pre_finetuning(data, name)
            process = self.model.process_batch
            # Models see decoded RGB images in finetuning exactly as at inference.
            dataset = ExampleDataset(examples, lambda view: process(decode_view(view), task=self.task))
            collate = getattr(self.model, "collate_batch", None)
            collator = Collator((lambda items: collate(items, task=self.task)) if collate else None)
            make_batch_plan = groups = None
            if chosen.grouped:
                from bpcore.samplers import GroupBatchSampler

                groups = [example.target for example in examples]

                def make_batch_plan(
                    indices: Sequence[int], size: int, part_seed: int
                ) -> Callable[[int], list[list[int]]]:
                    return GroupBatchSampler(
                        [groups[i] for i in indices], batch_size=max(2, size), seed=part_seed
                    ).plan

            return fit(
                self.model,
                dataset,
                **{
                    **fit_options,
                    "step": step or self._default_step(chosen.loss),
                    "configure_optimizers": configure_optimizers or self._configure_optimizers,
                    "seed": seed,
                },
                collate_fn=collator,
                make_batch_plan=make_batch_plan,
                groups=groups,
                cpu=str(getattr(self.model, "device", "cpu")) == "cpu",
            )

    @classmethod
    def _variant(cls, variant: str | None) -> tuple[str, Variant]:
        if not cls.variants:
            raise TaskNotSupportedError(f"{cls.task!r} has no finetuning")
        if variant is None:
            variant = next(iter(cls.variants))
        if not isinstance(variant, str):
            raise InputTypeError(
                f"expected one of {list(cls.variants)}, got {type(variant).__name__}", field="variant"
            )
        if variant not in cls.variants:
            raise InputError(
                f"unknown variant {variant!r:.100}; {cls.task} has {list(cls.variants)}", field="variant"
            )
        return variant, cls.variants[variant]

    def _options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        for key, value in options.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"must be a positive integer, got {value!r}", field=key)
        return dict(options)

    def _can_finetune(self) -> bool:
        if self._spec is not None and self.task not in self._spec.finetunable:
            return False
        can = getattr(self.model, "can_finetune", None)
        if can is not None:
            return bool(can(self.task))
        return callable(getattr(self.model, "process_batch", None)) and callable(
            getattr(self.model, "training_step", None)
        )

    @classmethod
    def check_params(cls, params: Any, variant: str | None = None) -> Any:
        """``params`` checked against the variant's schema, every image opened: before any model loads.

        Raises :class:`~bpcore.InputError` naming the field and item; returns the structured data.

        Example::

            bpcore.TextClassification.check_params({"texts": ["a", "b"], "labels": ["x"]})
            # InputError: params.labels: has 1 items, params.texts has 2
        """
        _, chosen = cls._variant(variant)
        data = structure(cls._prepare_params(params), chosen.params, root="params")
        cls._check_data(data)
        return data

    @classmethod
    def _prepare_params(cls, params: Any) -> Any:
        """Turn a shorthand of ``params`` into the task's schema (e.g. a folder of labelled images)."""
        return params

    @classmethod
    def _check_data(cls, data: Any) -> None:
        """Check the data before any training starts (e.g. that every image opens)."""

    def _pre_finetuning(self, data: Any, variant: str) -> None:
        arguments = self._pre_finetuning_arguments(data, variant)
        # The label count the loss checks the model's logits against.
        self._num_labels = len(arguments.get("labels") or {}) or None
        prepare = getattr(self.model, "pre_finetuning", None)
        if callable(prepare):
            prepare(**arguments)

    def _pre_finetuning_arguments(self, data: Any, variant: str) -> dict[str, Any]:
        """What the model's ``pre_finetuning`` is told (e.g. the labels, to build a head)."""
        return {}

    def _configure_optimizers(self) -> torch.optim.Optimizer:
        own = getattr(self.model, "configure_optimizers", None)
        if callable(own):
            return own()
        return self.configure_optimizers()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The task's default optimizer (used when neither the caller nor the model gives one)."""
        return adamw(self.model.parameters(), lr=1e-5)

    # -- steps: one per kind of loss --------------------------------------------------------
    def _default_step(self, loss: str) -> Callable[[Any, int], torch.Tensor]:
        return {
            LOSS_FROM_MODEL: self.step,
            LOSS_CROSS_ENTROPY: self.step_single_label,
            LOSS_BINARY_CROSS_ENTROPY: self.step_multi_label,
            LOSS_COSINE: self.step_cosine,
            LOSS_TRIPLET: self.step_triplet,
        }[loss]

    def _training_step(self, batch: Mapping[str, Any]) -> Any:
        return self.model.training_step(batch["inputs"], task=self.task)

    def step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """The model's own loss (``training_step`` returns it)."""
        return self._training_step(batch)

    def step_single_label(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Cross-entropy of the model's logits against the label indices."""
        import torch.nn.functional as F

        return F.cross_entropy(self._logits(batch), batch["targets"])

    def step_multi_label(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Per-label sigmoid cross-entropy against the multi-hot targets."""
        import torch.nn.functional as F

        logits = self._logits(batch)
        return F.binary_cross_entropy_with_logits(logits, batch["targets"].to(logits.dtype))

    def _logits(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The model's ``[batch, labels]`` logits, checked before a loss would fail on them obscurely."""
        import torch

        logits = self._training_step(batch)
        rows, labels = len(batch["targets"]), getattr(self, "_num_labels", None)
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
        if shape is None or len(shape) != 2 or shape[0] != rows or (labels and shape[1] != labels):
            got = f"a tensor of shape {list(shape)}" if shape is not None else type(logits).__name__
            raise TrainingError(
                f"{type(self.model).__name__}.training_step returned {got} for a batch of {rows} "
                f"{self.task} examples with {labels or 'its'} labels; it must return logits of shape "
                f"[{rows}, {labels or 'labels'}] (one row per example from process_batch, one column per label)"
            )
        return logits

    def step_cosine(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Squared error between each pair's cosine similarity and its target score."""
        from bpcore.batching import split_views
        from bpcore.losses import cosine_similarity_loss

        vectors1, vectors2 = split_views(self._training_step(batch), batch["views"])
        return cosine_similarity_loss(vectors1, vectors2, batch["targets"])

    def step_triplet(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Semi-hard triplet loss over the batch's groups."""
        from bpcore.distributed import gather_across_processes
        from bpcore.losses import TripletSemiHardLoss

        if not hasattr(self, "_triplet_loss"):
            self._triplet_loss = TripletSemiHardLoss()
        # Negatives are mined among the whole batch, whichever process holds them.
        embeddings = gather_across_processes(self._training_step(batch))
        return self._triplet_loss(embeddings, gather_across_processes(batch["targets"]))

    # -- saving ---------------------------------------------------------------------------
    def save(
        self,
        name: str,
        description: str | None = None,
        details: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Save the task's model (see :func:`bpcore.save`); returns the folder."""
        from bpcore.saving import save

        return save(self.model, name=name, description=description, details=details, **kwargs)


def torch_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices), as Accelerate does for a run."""
    from accelerate.utils import set_seed

    set_seed(seed)


def adamw(parameters: Any, lr: float) -> torch.optim.Optimizer:
    """AdamW, fused where torch supports it (on CPU it steps a 22M-parameter model ~50x faster)."""
    import torch

    parameters = [parameter for parameter in parameters if parameter.requires_grad]
    try:
        return torch.optim.AdamW(parameters, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(parameters, lr=lr)


def as_batch(value: Any, is_single: Callable[[Any], bool], field: str = "input") -> tuple[list[Any], bool]:
    """``(items, single)``: wrap a single item in a list, pass lists through; anything else is an error."""
    if value is None:
        raise InputTypeError("expected an item or a list of items, got None", field=field)
    if is_single(value):
        return [value], True
    if isinstance(value, (list, tuple)):
        return list(value), False
    raise InputTypeError(f"expected an item or a list of items, got {type(value).__name__}", field=field)


def is_text(value: Any) -> bool:
    return isinstance(value, str)


def is_image(value: Any) -> bool:
    """A single image: a path or base64 string, or anything else that is no list (checked later)."""
    return value is not None and not isinstance(value, (list, tuple))


def per_item_labels(labels: Any, count: int) -> Any:
    """One label list for every item, or one list per item, as a list per item."""
    if labels is None:
        return None
    if (
        isinstance(labels, (list, tuple))
        and labels
        and all(isinstance(item, (list, tuple)) for item in labels)
    ):
        return labels
    return [labels] * count


def group_index(groups: Sequence[Any]) -> list[int]:
    """Group ids (ints or strings) as consecutive integers."""
    index: dict[Any, int] = {}
    return [index.setdefault(group, len(index)) for group in groups]


def label_index(labels: Sequence[str]) -> dict[str, int]:
    """Sorted unique labels numbered from 0."""
    return {label: index for index, label in enumerate(sorted(set(labels)))}
