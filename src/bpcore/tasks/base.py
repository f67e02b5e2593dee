"""What every task shares: choosing its model, validating input, finetuning, saving, listing."""

from __future__ import annotations

import functools
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs

from bpcore.contracts import (
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
from bpcore.contracts.examples import labels_of
from bpcore.errors import (
    BpcoreError,
    InputError,
    InputTypeError,
    ModelProtocolError,
    TaskNotSupportedError,
    TrainingError,
)
from bpcore.models.direct import register_front
from bpcore.schemas import structure
from bpcore.tasks.datasets import from_dataset_loaders
from bpcore.training.options import TRAINING, ValidationSplit, check_options
from bpcore.training.options import TrainingOptions as TrainingOptions  # the tasks' finetune keywords

if TYPE_CHECKING:
    import torch

    from bpcore.batching import Example
    from bpcore.calls import PreparedCall
    from bpcore.evaluation.results import Metrics
    from bpcore.plugins.specs import ModelSpec
    from bpcore.training import History
    from bpcore.training.data import MakeBatchPlan

#: An input schema: an attrs class.
T = TypeVar("T", bound=attrs.AttrsInstance)


def finetune_arguments(frame_locals: dict[str, Any]) -> dict[str, Any]:
    """A task's ``finetune`` arguments (its ``locals()``) as keywords for :meth:`Task._finetune`.

    The named ones (``params``, ``validation_split``, the task's own) and the
    :class:`TrainingOptions` given; an unknown keyword is an :class:`~bpcore.InputTypeError` naming it.
    """
    options = frame_locals.get("options") or {}
    unknown = sorted(set(options) - set(TRAINING))
    if unknown:
        check_options({key: options[key] for key in unknown})  # raises, naming them and what finetune takes
    named = {key: value for key, value in frame_locals.items() if key not in ("self", "options", "__class__")}
    return {**named, **options}


class Task:
    """Base class of the nine tasks; a task is a thin, validating front for a model.

    ``model`` is ``None`` (the task's default), a registered name or alias, the name or path
    of a model saved with :func:`bpcore.save`, or a model object.
    """

    #: The task's rules (:mod:`bpcore.contracts`); ``task`` and ``variants`` come from it.
    contract: ClassVar[TaskContract]
    task: ClassVar[str]
    #: Each task defines ``__call__`` with the spec's signature.
    __call__: Callable[..., Any]
    #: Finetuning variants; the first is the default.
    variants: ClassVar[dict[str, VariantContract]] = {}
    #: Each task defines ``finetune`` with the spec's signature and calls :meth:`_finetune`.
    finetune: Callable[..., History]
    #: The model: a model object, or a :class:`~bpcore.remote.RemoteModel` for ``local=False``.
    model: Any
    _spec: ModelSpec | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        contract = cls.__dict__.get("contract")
        if contract is not None:
            cls.task = contract.name
            cls.variants = {variant.name: variant for variant in contract.variants}
            register_front(cls.task, cls)

    def __init__(
        self,
        model: Any = None,
        local: bool = True,
        api_key: str | None = None,
        device: str | None = None,
        *,
        url: str | None = None,
        precision: str = "fp32",
        model_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """A task over ``model``: a registered name, a saved folder, a model object or class (None: the default).

        ``device``: where the model runs (None: CUDA when there is one, else the CPU).
        ``local=False`` runs the task on a bpcore server (``url``, or ``$BPCORE_URL``) with ``api_key``.
        A remote task checks input here with the same schemas, loads no model and imports no torch;
        ``model`` is then a name the server serves (None: its default for the task).
        ``precision``: ``"fp32"``, ``"bf16"`` or ``"auto"`` (bf16 where the hardware computes it
        natively) for inference; :attr:`precision` says what runs (:mod:`bpcore.precision`).
        ``model_kwargs``: keywords for a registered model's class over its registered ones, e.g.
        ``{"backend": "openvino"}`` for a bp-st model (``bp-st[openvino]``).

        Example::

            tv = bpcore.TextVectorisation("all-minilm-l6-v2", model_kwargs={"backend": "openvino"})
        """
        from bpcore.precision import check_precision

        self.device = device
        self._precision = check_precision(precision)
        self._chose_model = model is not None
        self._remote = None
        if not local:
            from bpcore.remote import RemoteModel

            if precision != "fp32":  # the server's choice, made once for every client
                raise InputError(
                    "a remote task runs at the server's precision (bpcore serve --precision)",
                    field="precision",
                )
            if model_kwargs:
                raise InputError("a remote task's model is built by the server", field="model_kwargs")
            self._spec = None
            self._remote = RemoteModel.connect(self.task, model, api_key=api_key, url=url)
            self.model = self._remote
            return
        from bpcore.devices import resolve_device

        resolve_device(device)  # a device that does not exist here is an InputError naming ``device``
        self.model = self._resolve_model(model, device, model_kwargs)

    @property
    def precision(self) -> str:
        """The inference precision in use, ``"fp32"`` or ``"bf16"`` (``"auto"`` resolved for the model's device)."""
        from bpcore.precision import resolve_precision

        return resolve_precision(self._precision, self._model_device())

    def _model_device(self) -> Any:
        device = getattr(self.model, "device", None)
        return device if device is not None and not isinstance(device, bool) else self.device

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={getattr(self.model, 'name', None) or type(self.model).__name__!r})"
        )

    # -- models ---------------------------------------------------------------------------
    def _resolve_model(self, model: Any, device: str | None, model_kwargs: Mapping[str, Any] | None) -> Any:
        from bpcore.models.auto import resolve_model

        self._spec = None
        if model is None or isinstance(model, str):
            model, self._spec = resolve_model(model, task=self.task, device=device, model_kwargs=model_kwargs)
        elif isinstance(model, type):
            from bpcore.protocol import ready_for_inference

            model = ready_for_inference(model(device=device, **(model_kwargs or {})))
        elif model_kwargs:
            raise InputError(
                "model_kwargs build a model from its name or class; this one is already built",
                field="model_kwargs",
            )
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
        """The registered models that support this task (see :meth:`bpcore.models.AutoModel.list_models`).

        ``return_dict``: keyed by name instead of a list; ``display``: print them instead;
        ``limit``: at most that many.
        """
        from bpcore.models.auto import AutoModel

        return AutoModel.list_models(task=cls.task, return_dict=return_dict, display=display, limit=limit)

    # -- inference ------------------------------------------------------------------------
    def _infer(self, schema: type[T], data: dict[str, Any], single: bool, **model_kwargs: Any) -> Any:
        """Check ``data`` against ``schema`` and answer it: here, on the server, or (preparing) not yet."""
        from bpcore.calls import is_preparing

        call = self._prepare(schema, data, single, model_kwargs)
        if is_preparing():
            return call
        if self._remote is not None:
            return self._remote.answer(call)
        return self.run(call)

    def _prepare(
        self, schema: type[T], data: dict[str, Any], single: bool, model_kwargs: dict[str, Any]
    ) -> PreparedCall:
        from bpcore.calls import PreparedCall

        for key, value in model_kwargs.items():
            if not isinstance(value, bool):
                raise InputTypeError(f"expected true or false, got {type(value).__name__}", field=key)
        value = structure(data, schema, root="input")
        payload = attrs.asdict(value, recurse=False)
        if "image" in payload:
            from bpcore.images import load_images

            payload["image"] = load_images(payload["image"], "input.image")
        return PreparedCall(self.task, payload, single, dict(model_kwargs))

    def prepare(self, *args: Any, **kwargs: Any) -> PreparedCall:
        """The task call ``self(*args, **kwargs)`` checked, without calling the model (what a server batches).

        Example::

            calls = [tv.prepare("one text"), tv.prepare(["two", "texts"])]
            answers = tv.run(merge(calls))   # one model call for three texts
        """
        from bpcore.calls import preparing

        with preparing():
            call: PreparedCall = self(*args, **kwargs)
        return call

    def run(self, call: PreparedCall) -> Any:
        """The model's answers to ``call`` (from :meth:`prepare`), checked: one answer for a single item, else a list."""
        from bpcore.models.direct import task_call
        from bpcore.precision import running_in
        from bpcore.protocol import check_answers, describe_model, inference

        plugin = self._spec.plugin if self._spec is not None else None
        with inference(self.model), task_call(), running_in(self.precision, self._model_device()):
            try:
                output = self.model(call.payload, task=self.task, **call.model_kwargs)
            except BpcoreError:
                raise
            except Exception as error:  # the model's own bug: one error type, naming model and plugin
                raise ModelProtocolError(
                    f"{describe_model(self.model, plugin)} failed on {self.task}: "
                    f"{type(error).__name__}: {str(error)[:300]}"
                ) from error
        answers = check_answers(
            output,
            call.count,
            task=self.task,
            model=self.model,
            plugin=plugin,
            return_tensor=bool(call.model_kwargs.get("return_tensor")),
        )
        return answers[0] if call.single else answers

    # -- finetuning -----------------------------------------------------------------------
    def _finetune(
        self,
        params: Mapping[str, Any] | None,
        *,
        variant: str | None = None,
        validation_split: ValidationSplit = 0.15,
        **arguments: Any,
    ) -> History:
        """Finetune the task's model on ``params``: what every task's ``finetune`` does.

        ``arguments`` are the task's own options (``max_length``, ...) and the
        :class:`~bpcore.TrainingOptions` given. Every keyword is checked before the data (which
        may open many images) and before training; the data is checked before the model's
        ``pre_finetuning`` (a new head) and the loop (:func:`bpcore.training.fit`). The model is
        left at the weights of the best epoch (by the validation loss, or ``early_stopping_metric``),
        in ``eval()`` mode.
        """
        self._need_local("finetuning")  # before the loop's imports: a remote task imports no torch
        from bpcore.model_lock import lock_for
        from bpcore.training.loop import fit
        from bpcore.training.options import LOOP, check_validation_split, split_options, with_model_defaults

        params, variant, validation_split, arguments = from_dataset_loaders(
            self.task, params, variant, validation_split, arguments
        )
        name, chosen = self._variant(variant)
        self._take_finetunable_default()
        arguments = with_model_defaults(arguments, getattr(self.model, "finetune_defaults", {}))
        options, task_options = split_options(arguments)
        task_options = self._options(task_options)
        check_options({"validation_split": validation_split, **options})
        self._check_finetunable()
        data = self.check_params(params, name)
        examples = chosen.examples(data, task_options)
        check_validation_split(validation_split, len(examples))  # explicit indices fit the data
        measuring = self._metrics_parts(data, name, options)
        # The model is ours alone from its new head to its best weights: calls in flight end first,
        # calls made meanwhile wait (never answered by, nor switching modes of, a training model).
        with lock_for(self.model).writing():
            options["seed"] = self._seed(options)
            self._pre_finetuning(data, name)
            parts = self._loop_parts(chosen, examples, options)
            loop_options = {key: value for key, value in options.items() if key in LOOP}
            return fit(
                self.model,
                self._dataset(examples),
                validation_split=validation_split,
                **parts,
                **measuring,
                **loop_options,
            )

    def _metrics_parts(self, data: Any, variant: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """With ``metrics=True``, what :func:`~bpcore.training.fit` computes them with: the task's
        evaluation on the validation rows; checked before any training."""
        if not options.get("metrics"):
            return {}
        from bpcore.evaluation.definitions import check_early_stopping_metric
        from bpcore.evaluation.evaluate import on_rows

        if options.get("train_dataloader") is not None or options.get("val_dataloader") is not None:
            raise InputError(
                "needs the validation examples as params (or loaders over bpcore.utils.datasets "
                "datasets): batches of your own only your step reads cannot be evaluated",
                field="metrics",
            )
        check_early_stopping_metric(options.get("early_stopping_metric") or "-loss", self.task, variant)
        return {"evaluate": on_rows(self, data, variant)}

    def _take_finetunable_default(self) -> None:
        """A default that cannot be finetuned gives way to the task's finetunable default; a chosen model never does."""
        from bpcore.models.auto import resolve_model
        from bpcore.plugins.registry import get_registry, qualified_name, user_defaults
        from bpcore.training.history import BpcoreWarning

        if self._chose_model or self.task in user_defaults() or self._can_finetune():
            return
        spec = get_registry().finetune_default_for(self.task)
        if spec is None:
            return  # _check_finetunable says which models could be
        current = getattr(self.model, "name", None) or type(self.model).__name__
        warnings.warn(
            f"{current}, the default for {self.task}, cannot be finetuned: finetuning {spec.name} instead",
            BpcoreWarning,
            stacklevel=4,
        )
        self.model, self._spec = resolve_model(qualified_name(spec), task=self.task, device=self.device)

    def _check_finetunable(self) -> None:
        if not self._can_finetune():
            model = getattr(self.model, "name", None) or type(self.model).__name__
            rows = self.list_models() or []
            # A list of rows (list_models's return_dict=False), typed as a union with the dict form.
            finetunable = [row["name"] for row in rows if self.task in row["finetunable"]]  # type: ignore[index]
            raise TaskNotSupportedError(
                f"{model} cannot be finetuned for {self.task!r}; finetunable models: {finetunable}"
            )

    @staticmethod
    def _seed(options: Mapping[str, Any]) -> int:
        """The run's seed, set now so that a head ``pre_finetuning`` builds starts the same for
        the same seed; a resumed run reuses the seed of the run it continues."""
        seed = options.get("seed")
        if seed is None and options.get("resume"):
            from bpcore.training.checkpoints import checkpointed_seed

            seed = checkpointed_seed(options.get("checkpoint_dir"))
        seed = random.randrange(2**31) if seed is None else seed
        torch_seed(seed)
        return seed

    def _dataset(self, examples: Sequence[Example]) -> Any:
        from bpcore.batching import ExampleDataset

        return ExampleDataset(examples, self._process_view)

    def _process_view(self, view: Mapping[str, Any]) -> Any:
        """One view of an example through the model's ``process_batch``; images decoded to RGB as at inference."""
        from bpcore.images import decode_view

        return self.model.process_batch(decode_view(view), task=self.task)

    def _collate(self, items: list[Any]) -> Any:
        return self.model.collate_batch(items, task=self.task)

    def _loop_parts(
        self, chosen: VariantContract, examples: Sequence[Example], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """What :func:`~bpcore.training.fit` takes beyond the options: the step, optimizer, batching."""
        from bpcore.batching import Collator

        collate = self._collate if callable(getattr(self.model, "collate_batch", None)) else None
        parts: dict[str, Any] = {
            "step": options.get("step") or self._default_step(chosen.loss),
            "configure_optimizers": options.get("configure_optimizers") or self._configure_optimizers,
            "collate_fn": Collator(collate),
            "cpu": str(getattr(self.model, "device", "cpu")) == "cpu",
        }
        if chosen.grouped:  # batches keep same-group examples together
            parts["groups"] = [example.target for example in examples]
            parts["make_batch_plan"] = self._group_plan(parts["groups"])
        return parts

    @staticmethod
    def _group_plan(groups: list[Any]) -> MakeBatchPlan:
        from bpcore.training.samplers import group_batch_plan

        return functools.partial(group_batch_plan, groups)

    @classmethod
    def _variant(cls, variant: str | None) -> tuple[str, VariantContract]:
        chosen = cls.contract.variant(variant)
        return chosen.name, chosen

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
        """``params`` checked against ``variant``'s schema (None: the default), every image opened: before any model loads.

        Raises :class:`~bpcore.InputError` naming the field and item; returns the structured data.

        Example::

            bpcore.TextClassification.check_params({"texts": ["a", "b"], "labels": ["x"]})
            # InputError: params.labels: has 1 items, params.texts has 2
        """
        _, chosen = cls._variant(variant)
        # An instance of the variant's schema (an attrs class of its own per variant).
        data: Any = structure(cls._prepare_params(params), chosen.params, root="params")
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
        self._refresh_details()

    def _refresh_details(self) -> None:
        """Registry details a new head makes untrue follow the model (saved with it): label and parameter counts."""
        details = getattr(self.model, "details", None)
        if not isinstance(details, dict):
            return
        if self._num_labels and "num_classes" in details:
            details["num_classes"] = self._num_labels
        if "num_parameters" in details:
            details["num_parameters"] = sum(parameter.numel() for parameter in self.model.parameters())

    def _pre_finetuning_arguments(self, data: Any, variant: str) -> dict[str, Any]:
        """What the model's ``pre_finetuning`` is told, as the variant's contract says (e.g. the labels)."""
        told = self.contract.variant(variant).pre_finetuning
        if not told:
            return {}
        index = labels_of(data)
        arguments = {
            "labels": {i: label for label, i in index.items()},
            "num_classes": len(index),
            "multi_label": True,
        }
        return {name: arguments[name] for name in told}

    def _configure_optimizers(self) -> torch.optim.Optimizer:
        own = getattr(self.model, "configure_optimizers", None)
        if callable(own):
            return own()
        return self.configure_optimizers()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The task's default optimizer, as its contract says (used when neither the caller nor the model gives one)."""
        optimizer: torch.optim.Optimizer = self.contract.optimizer.build(self.model.parameters())
        return optimizer

    # -- steps: one per kind of loss --------------------------------------------------------
    def _default_step(self, loss: str) -> Callable[[Any, int], torch.Tensor]:
        return {
            LOSS_FROM_MODEL: self.step,
            LOSS_FROM_MODEL_OR_CROSS_ENTROPY: self.step_loss_or_logits,
            LOSS_CROSS_ENTROPY: self.step_single_label,
            LOSS_BINARY_CROSS_ENTROPY: self.step_multi_label,
            LOSS_COSINE: self.step_cosine,
            LOSS_TRIPLET: self.step_triplet,
        }[loss]

    def _training_step(self, batch: Mapping[str, Any]) -> Any:
        return self.model.training_step(batch["inputs"], task=self.task)

    def step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """The model's own loss (``training_step`` returns it).

        ``batch``: the collated batch the loop hands over; ``batch_idx``: its index in the epoch.
        """
        return self._training_step(batch)

    def step_single_label(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Cross-entropy of the model's logits against the label indices.

        ``batch``: the collated batch the loop hands over; ``batch_idx``: its index in the epoch.
        """
        import torch.nn.functional as F

        return F.cross_entropy(self._logits(batch), batch["targets"])

    def step_loss_or_logits(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """The model's own loss (a scalar), or cross-entropy of the logits it returns instead.

        ``batch``: the collated batch the loop hands over; ``batch_idx``: its index in the epoch.
        """
        import torch
        import torch.nn.functional as F

        output = self._training_step(batch)
        if isinstance(output, torch.Tensor) and output.ndim == 0:
            return output
        return F.cross_entropy(self._checked_logits(output, batch), batch["targets"])

    def step_multi_label(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Per-label sigmoid cross-entropy against the multi-hot targets.

        ``batch``: the collated batch the loop hands over; ``batch_idx``: its index in the epoch.
        """
        import torch.nn.functional as F

        logits = self._logits(batch)
        return F.binary_cross_entropy_with_logits(logits, batch["targets"].to(logits.dtype))

    def _logits(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The model's ``[batch, labels]`` logits, checked before a loss would fail on them obscurely."""
        return self._checked_logits(self._training_step(batch), batch)

    def _checked_logits(self, logits: Any, batch: Mapping[str, Any]) -> torch.Tensor:
        import torch

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
        """Squared error between each pair's cosine similarity and its target score.

        ``batch``: the collated batch the loop hands over; ``batch_idx``: its index in the epoch.
        """
        from bpcore.batching import split_views
        from bpcore.training.losses import cosine_similarity_loss

        vectors1, vectors2 = split_views(self._training_step(batch), batch["views"])
        return cosine_similarity_loss(vectors1, vectors2, batch["targets"])

    def step_triplet(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Semi-hard triplet loss over the batch's groups.

        ``batch``: the collated batch the loop hands over; ``batch_idx``: its index in the epoch.
        """
        from bpcore.training.distributed import gather_across_processes
        from bpcore.training.losses import TripletSemiHardLoss

        if not hasattr(self, "_triplet_loss"):
            self._triplet_loss = TripletSemiHardLoss()
        # Negatives are mined among the whole batch, whichever process holds them.
        embeddings = gather_across_processes(self._training_step(batch))
        return self._triplet_loss(embeddings, gather_across_processes(batch["targets"]))

    # -- evaluating -----------------------------------------------------------------------
    def evaluate(
        self, params: Any, variant: str | None = None, *, predictions: bool = False, threshold: float = 0.5
    ) -> Metrics:
        """Score the model on ``params``, the keys ``finetune`` takes for ``variant``: all of it.

        Pass held-out data (not what the model was finetuned on) to see how it does on new
        examples. ``variant`` None: the one the keys fit (labels as lists: multi-label), the default
        first. A classifier is scored over the labels it learned; a zero-shot one over the labels
        in ``params``. ``threshold``: the probability a multi-label label needs to count as predicted.
        ``predictions=True`` keeps each example's prediction in ``metrics.predictions``. The metrics
        per variant are :func:`bpcore.evaluation.metrics_for`'s (needs ``pip install 'bpcore[evaluate]'``).

        Example::

            tc = bpcore.TextClassification()
            tc.evaluate(test)["accuracy"]           # zero-shot: 0.41
            tc.finetune(train)
            metrics = tc.evaluate(test)             # {"accuracy": 0.93, "f1_macro": 0.92, ...}
            print(metrics)                          # a table, with per-label scores and the confusion matrix
        """
        from bpcore.evaluation.evaluate import evaluate

        return evaluate(self, params, variant, predictions=predictions, threshold=threshold)

    # -- saving and deploying -------------------------------------------------------------
    def _need_local(self, action: str) -> None:
        if self._remote is not None:
            raise TaskNotSupportedError(
                f"{action} needs the model here: this task runs on the server {self._remote.url} (local=False); "
                "create it with local=True to finetune, save or upload"
            )

    def save(
        self,
        name: str,
        description: str | None = None,
        details: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Save the task's model as ``name`` under ``$BPCORE_HOME`` (see :func:`bpcore.save`); returns the folder.

        ``description`` and ``details`` (a dict) are saved with it and shown by ``bpcore list-models``.
        """
        from bpcore.saving import save

        self._need_local("saving")
        return save(self.model, name=name, description=description, details=details, **kwargs)

    def upload(
        self,
        name: str,
        description: str | None = None,
        details: Mapping[str, Any] | None = None,
        api_key: str | None = None,
        *,
        url: str | None = None,
        overwrite: bool = True,
    ) -> str:
        """Send the task's model to a bpcore server (``url`` or ``$BPCORE_URL``), which serves it as ``name``.

        As :meth:`save` does, it replaces a model of that name unless ``overwrite=False``.
        ``description`` and ``details`` travel with it; ``api_key`` is the server's key (default
        ``$BPCORE_API_KEY``).

        Example::

            tg.finetune({"input_text": inp, "output_text": out})
            tg.upload("t5-sentiment", description="Predicts sentiment", api_key="abc", url="http://127.0.0.1:8000")
            bpcore.TextGeneration("t5-sentiment", local=False, api_key="abc")("I enjoyed it!")
        """
        from bpcore.remote import upload

        self._need_local("uploading")
        return upload(
            self.model,
            name=name,
            description=description,
            details=details,
            api_key=api_key,
            url=url,
            overwrite=overwrite,
        )


def torch_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices), as Accelerate does for a run."""
    from accelerate.utils import set_seed

    set_seed(seed)


def adamw(parameters: Any, lr: float) -> torch.optim.Optimizer:
    """AdamW, fused where torch supports it (on CPU it steps a 22M-parameter model ~50x faster)."""
    optimizer: torch.optim.Optimizer = Optimizer("AdamW", lr).build(parameters)
    return optimizer


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
