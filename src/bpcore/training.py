"""The one finetuning loop every task uses, built on Accelerate.

It runs unchanged on one CPU, one GPU, or several processes started by ``accelerate launch``.
"""

from __future__ import annotations

import math
import operator
import os
import random
import time
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import attrs
import torch
from torch.utils.data import DataLoader, Dataset

from bpcore.errors import BpcoreError, InputError, InputTypeError, TrainingError
from bpcore.samplers import has_triplet

Step = Callable[[Any, int], torch.Tensor]
#: ``make_batch_plan(indices, batch_size, seed)`` gives ``plan(epoch)``: the epoch's batches, as positions in ``indices``.
MakeBatchPlan = Callable[[Sequence[int], int, int], Callable[[int], list[list[int]]]]


class BpcoreWarning(UserWarning):
    """Something worth knowing about a finetuning run (e.g. it validated on its training data)."""


@attrs.frozen
class EpochRecord:
    """One epoch: its mean training and validation losses, how long it took, its last learning rate."""

    epoch: int
    train_loss: float
    val_loss: float
    seconds: float = 0.0
    learning_rate: float | None = None


@attrs.define
class History:
    """What :func:`fit` did: the losses of each epoch and how it validated.

    ``validated_on`` is ``"validation split"``, ``"validation dataloader"`` or, when the data
    was too small to hold any out, ``"training data"``.
    """

    epochs: list[EpochRecord] = attrs.field(factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    validated_on: str = "validation split"
    batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    seed: int | None = None
    #: The number of processes that trained (``torchrun`` / ``accelerate launch``).
    num_processes: int = 1
    #: The epoch a resumed run continued after (``resume=True``), else None.
    resumed_after_epoch: int | None = None
    #: The training loss of every batch, in order (the mean over processes).
    step_losses: list[float] = attrs.field(factory=list)

    @property
    def train_loss(self) -> list[float]:
        return [record.train_loss for record in self.epochs]

    @property
    def val_loss(self) -> list[float]:
        return [record.val_loss for record in self.epochs]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        fields = dict(data)
        fields["epochs"] = [EpochRecord(**record) for record in fields.get("epochs", [])]
        return cls(**fields)

    @property
    def seconds(self) -> float:
        """The time the recorded epochs took."""
        return sum(record.seconds for record in self.epochs)

    def __len__(self) -> int:
        return len(self.epochs)


def split_indices(
    count: int,
    validation_split: float | tuple[Sequence[int], Sequence[int]],
    seed: int,
    groups: Sequence[Hashable] | None = None,
) -> tuple[list[int], list[int]]:
    """Training and validation indices from a fraction or from explicit index lists.

    With ``groups`` (triplet finetuning) a fraction is split by group
    (:func:`bpcore.samplers.group_split`): the validation part gets same-group pairs of at
    least two groups, and the training part keeps every group; when the data cannot give
    that, nothing is held out. Explicit index lists are used as given.
    """
    check_validation_split(validation_split, count)
    if isinstance(validation_split, (tuple, list)):
        train, val = ([operator.index(i) for i in part] for part in validation_split)
        return train, val
    if groups is not None:
        from bpcore.samplers import group_split

        if len(groups) != count:
            raise InputError(f"{len(groups)} groups for {count} examples", field="groups")
        return group_split(groups, validation_split, seed)
    order = list(range(count))
    random.Random(seed).shuffle(order)
    val_count = int(count * validation_split)
    return order[val_count:], order[:val_count]


_INDEX_LISTS = (list, tuple, range)


def check_validation_split(validation_split: Any, count: int | None = None) -> None:
    """``validation_split`` is a fraction in [0, 1) or ``(train_indices, val_indices)`` of ints below ``count``."""
    field = "validation_split"
    usage = "must be a fraction in [0, 1) or a pair (train_indices, val_indices)"
    if isinstance(validation_split, (tuple, list)):
        if len(validation_split) != 2:
            raise InputError(f"{usage}; got a sequence of {len(validation_split)}", field=field)
        for name, part in zip(("train_indices", "val_indices"), validation_split):
            if not isinstance(part, _INDEX_LISTS):
                raise InputTypeError(
                    f"expected a list of example indices, got {type(part).__name__}", field=f"{field}.{name}"
                )
            for position, index in enumerate(part):
                if isinstance(index, bool) or not hasattr(index, "__index__"):
                    raise InputTypeError(
                        f"item {position} is {type(index).__name__} {index!r:.40}, not an integer index",
                        field=f"{field}.{name}",
                    )
                if count is not None and not 0 <= operator.index(index) < count:
                    raise InputError(
                        f"index {index} (item {position}) is outside the {count} examples",
                        field=f"{field}.{name}",
                    )
        if not len(validation_split[0]):
            raise InputError("no training indices", field=f"{field}.train_indices")
        return
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)):
        raise InputTypeError(f"{usage}; got {type(validation_split).__name__}", field=field)
    if not 0 <= validation_split < 1:  # also refuses NaN
        raise InputError(f"must be in [0, 1), got {validation_split}", field=field)


def _check_integer(value: Any, field: str, low: int, optional: bool = False, high: int | None = None) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        expected = "an integer" + (" or None" if optional else "")
        raise InputTypeError(f"expected {expected}, got {type(value).__name__} {value!r:.40}", field=field)
    if value < low or (high is not None and value >= high):
        bound = f">= {low}" if high is None else f"in [{low}, {high})"
        raise InputError(f"must be an integer {bound}, got {value}", field=field)


def _is_batch_iterable(value: Any) -> bool:
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping))


def check_fit_options(
    *,
    validation_split: Any = 0.15,
    epochs: Any = 20,
    batch_size: Any = None,
    optimal_batch_size: Any = None,
    early_stopping_epochs: Any = 1,
    train_dataloader: Any = None,
    val_dataloader: Any = None,
    step: Any = None,
    configure_optimizers: Any = None,
    seed: Any = None,
    progress: Any = None,
    count: int | None = None,
    **loop_options: Any,
) -> None:
    """Check every keyword of :func:`fit` (and of a task's ``finetune``) before any training step.

    Raises :class:`~bpcore.InputError` (or :class:`~bpcore.InputTypeError`) naming the keyword.
    ``count`` (the number of examples) also checks explicit validation indices.
    """
    check_validation_split(validation_split, count)
    _check_integer(epochs, "epochs", 1)
    _check_integer(early_stopping_epochs, "early_stopping_epochs", 0)
    _check_integer(batch_size, "batch_size", 1, optional=True)
    _check_integer(optimal_batch_size, "optimal_batch_size", 1, optional=True)
    _check_integer(seed, "seed", 0, optional=True, high=2**32)
    if progress is not None and not isinstance(progress, bool):
        raise InputTypeError(f"expected true, false or None, got {type(progress).__name__}", field="progress")
    check_loop_options(**loop_options)
    for name, function in (("step", step), ("configure_optimizers", configure_optimizers)):
        if function is not None and not callable(function):
            raise InputTypeError(f"expected a function, got {type(function).__name__}", field=name)
    for name, loader in (("train_dataloader", train_dataloader), ("val_dataloader", val_dataloader)):
        if loader is not None and not _is_batch_iterable(loader):
            raise InputTypeError(
                f"expected a DataLoader (or another iterable of batches), got {type(loader).__name__}",
                field=name,
            )


#: ``mixed_precision`` values, handed to Accelerate.
MIXED_PRECISIONS = ("no", "fp16", "bf16")


@attrs.frozen
class LoopOptions:
    """How the loop trains, beyond the spec's options; the keywords of every task's ``finetune``.

    - ``gradient_accumulation_steps``: batches whose gradients add up before each optimizer step.
    - ``mixed_precision``: ``"no"``, ``"fp16"`` (GPUs) or ``"bf16"``, handed to Accelerate.
    - ``max_grad_norm``: clip the gradients' total norm to this before each step.
    - ``lr_scheduler`` (``"constant"``, ``"linear"``, ``"cosine"``) after a linear warm-up over
      ``warmup_ratio`` of the optimizer steps.
    - ``checkpoint_dir``: save a checkpoint at each epoch end (see :mod:`bpcore.checkpoints`),
      keeping the last ``keep_checkpoints``; ``resume=True`` continues the run checkpointed
      there from its last complete, valid checkpoint (a damaged one is skipped with a warning),
      or starts one when there is none yet.
    - ``log_with``: Accelerate trackers (``"tensorboard"``, ``"wandb"``, ...) to hand the
      per-step and per-epoch losses and the learning rate to, writing under ``log_dir``.
    """

    gradient_accumulation_steps: int | None = None
    mixed_precision: str = "no"
    max_grad_norm: float | None = None
    lr_scheduler: str = "constant"
    warmup_ratio: float = 0.0
    checkpoint_dir: str | os.PathLike[str] | None = None
    resume: bool = False
    keep_checkpoints: int | None = 2
    log_with: str | Sequence[str] | None = None
    log_dir: str | os.PathLike[str] = "runs"


_LOOP_OPTIONS = {field.name: field for field in attrs.fields(LoopOptions)}


def check_loop_options(**options: Any) -> LoopOptions:
    """:class:`LoopOptions` from keywords (None means the default), each checked by name."""
    from bpcore.schedules import LR_SCHEDULERS

    unknown = set(options) - set(_LOOP_OPTIONS)
    if unknown:
        raise InputTypeError(f"unknown finetuning option(s) {sorted(unknown)}", field=sorted(unknown)[0])
    given = {key: value for key, value in options.items() if value is not None}
    _check_integer(given.get("gradient_accumulation_steps"), "gradient_accumulation_steps", 1, optional=True)
    _check_integer(given.get("keep_checkpoints"), "keep_checkpoints", 1, optional=True)
    for name, choices in (("mixed_precision", MIXED_PRECISIONS), ("lr_scheduler", LR_SCHEDULERS)):
        if name in given and given[name] not in choices:
            raise InputError(f"must be one of {list(choices)}, got {given[name]!r:.60}", field=name)
    for name, low, high in (("max_grad_norm", 0.0, math.inf), ("warmup_ratio", 0.0, 1.0)):
        value = given.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputTypeError(f"expected a number, got {type(value).__name__}", field=name)
        if not (low < value < high if name == "max_grad_norm" else low <= value < high):
            bounds = "> 0" if name == "max_grad_norm" else "in [0, 1)"
            raise InputError(f"must be {bounds}, got {value}", field=name)
    for name in ("checkpoint_dir", "log_dir"):
        if name in given and not isinstance(given[name], (str, os.PathLike)):
            raise InputTypeError(f"expected a folder path, got {type(given[name]).__name__}", field=name)
    if "resume" in given and not isinstance(given["resume"], bool):
        raise InputTypeError(f"expected true or false, got {type(given['resume']).__name__}", field="resume")
    if given.get("resume") and "checkpoint_dir" not in given:
        raise InputError("needs checkpoint_dir: the folder the run saved its checkpoints in", field="resume")
    trackers = given.get("log_with")
    if trackers is not None:
        names = [trackers] if isinstance(trackers, str) else trackers
        if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
            raise InputTypeError(
                "expected a tracker name or a list of names, e.g. 'tensorboard'", field="log_with"
            )
    return LoopOptions(**given)


def _as_loss(loss: Any, where: str) -> torch.Tensor:
    """The step's result as a 0-dim float tensor, or a :class:`TrainingError` saying what it was."""
    what = "the step (the model's training_step and the task's loss, or your step=)"
    if not isinstance(loss, torch.Tensor):
        raise TrainingError(
            f"{what} returned {type(loss).__name__} in {where}; it must return the batch's loss "
            "as a scalar torch.Tensor"
        )
    if loss.numel() != 1 or not loss.is_floating_point():
        raise TrainingError(
            f"{what} returned a {loss.dtype} tensor of shape {tuple(loss.shape)} in {where}; "
            "it must return the batch's loss as a scalar float tensor"
        )
    return loss.reshape(())


def _out_of_memory(error: BaseException) -> bool:
    from accelerate.utils.memory import should_reduce_batch_size

    return isinstance(error, Exception) and should_reduce_batch_size(error)


class _StepModule(torch.nn.Module):
    # Accelerate (and DDP under it) only syncs gradients for work done inside a prepared
    # module's forward, so the step runs as this wrapper's forward.
    def __init__(self, model: torch.nn.Module, step: Step):
        super().__init__()
        self.model = model
        self.step = step

    def forward(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.step(batch, batch_idx)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()}


def _copy_into(buffer: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    """Copy ``model``'s weights into an earlier snapshot (cheaper than allocating a new one)."""
    with torch.no_grad():
        for key, value in model.state_dict().items():
            buffer[key].copy_(value)


def _release_memory() -> None:
    import gc

    from accelerate.utils.memory import clear_device_cache

    gc.collect()
    clear_device_cache()


def _check_finite(loss: torch.Tensor, what: str) -> None:
    if not torch.isfinite(loss.detach()).all():
        raise TrainingError(
            f"the {what} became {float(loss.detach())}: lower the learning rate or check the data"
        )


@attrs.define
class _Run:
    """What one attempt of :func:`fit` trains with (a new one after an out-of-memory retry)."""

    accelerator: Any
    wrapper: Any
    optimizer: Any
    scheduler: Any
    options: LoopOptions
    global_step: int = 0


def _train_epoch(run: _Run, loader: Any, epoch: int, on_batch: Callable[[int], None]) -> list[torch.Tensor]:
    """One epoch of training; the detached loss of each batch (this process's share)."""
    accelerator, wrapper, optimizer = run.accelerator, run.wrapper, run.optimizer
    wrapper.train()
    losses = []
    for batch_idx, batch in enumerate(loader):
        with accelerator.accumulate(wrapper):
            where = f"epoch {epoch}, batch {batch_idx}"
            loss = _as_loss(wrapper(batch, batch_idx), where)
            _check_finite(loss, f"training loss in {where}")
            if loss.requires_grad:
                accelerator.backward(loss)
            if accelerator.sync_gradients:
                if run.options.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(wrapper.parameters(), run.options.max_grad_norm)
                optimizer.step()
                if run.scheduler is not None and not accelerator.optimizer_step_was_skipped:
                    run.scheduler.step()
                optimizer.zero_grad()
        losses.append(loss.detach())
        run.global_step += 1
        if run.options.log_with:
            accelerator.log(
                {"train/loss": float(losses[-1]), "train/learning_rate": _learning_rate(optimizer)},
                step=run.global_step,
            )
        on_batch(batch_idx)
    return losses


def _learning_rate(optimizer: Any) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _validate(accelerator: Any, wrapper: Any, loader: Any, epoch: int) -> float:
    """The mean validation loss, over the batches whose loss measured something.

    A batch whose triplet loss formed no triplet (see :func:`bpcore.losses.scoring_triplets`)
    scores 0 without measuring anything: it is left out. When every batch is left out, the
    result is NaN and the epoch cannot count as an improvement.
    """
    from bpcore.losses import scoring_triplets

    wrapper.eval()
    losses = []
    with torch.no_grad():
        for batch_idx, batch in enumerate(loader):
            with scoring_triplets() as count:
                loss = _as_loss(wrapper(batch, batch_idx), f"validation of epoch {epoch}, batch {batch_idx}")
                loss = loss.detach()
            _check_finite(loss, f"validation loss in epoch {epoch}, batch {batch_idx}")
            # NaN marks a batch that measured nothing; every process gathers as many batches.
            losses.append(torch.full_like(loss.float().reshape(()), math.nan) if count.formed_none else loss)
    gathered = _gather(accelerator, losses)
    measured = gathered[~torch.isnan(gathered)]
    return float(measured.mean()) if measured.numel() else math.nan


def _gather(accelerator: Any, losses: list[torch.Tensor]) -> torch.Tensor:
    """Every process's batch losses, as a (processes, batches) tensor on the CPU."""
    if not losses:
        return torch.empty(0)
    stacked = torch.stack([loss.float().reshape(()) for loss in losses]).to(accelerator.device)
    return accelerator.gather(stacked).reshape(-1, len(losses)).cpu()


def _batch_losses(accelerator: Any, losses: list[torch.Tensor]) -> list[float]:
    """The loss of each batch, averaged over the processes that shared it."""
    gathered = _gather(accelerator, losses)
    return gathered.mean(dim=0).tolist() if gathered.numel() else []


def _with_triplets(batches: list[list[int]], groups: Sequence[Hashable]) -> list[list[int]]:
    """Validation batches merged forward until each can form a triplet (where the data allows)."""
    merged: list[list[int]] = []
    pending: list[int] = []
    for batch in batches:
        pending = pending + list(batch)
        if has_triplet(groups[i] for i in pending):
            merged.append(pending)
            pending = []
    if pending:
        if merged:
            merged[-1] = merged[-1] + pending
        else:
            merged.append(pending)
    return merged


def fit(
    model: torch.nn.Module,
    dataset: Dataset | Sequence[Any],
    *,
    step: Step,
    configure_optimizers: Callable[[], torch.optim.Optimizer],
    collate_fn: Callable[[list[Any]], Any] | None = None,
    make_batch_plan: MakeBatchPlan | None = None,
    validation_split: float | tuple[Sequence[int], Sequence[int]] = 0.15,
    epochs: int = 20,
    batch_size: int | None = None,
    optimal_batch_size: int | None = None,
    early_stopping_epochs: int = 1,
    train_dataloader: DataLoader | None = None,
    val_dataloader: DataLoader | None = None,
    seed: int | None = None,
    groups: Sequence[Hashable] | None = None,
    cpu: bool = False,
    progress: bool | None = None,
    **loop_options: Any,
) -> History:
    """Finetune ``model`` on ``dataset`` and return the :class:`History`.

    ``step(batch, batch_idx)`` returns the loss of a batch. After training the weights of
    the epoch with the best validation loss are loaded back. With ``batch_size=None`` the
    batch starts at ``optimal_batch_size`` (at most the data size) and shrinks on
    out-of-memory errors (each retry starts again from the weights the run began with), and
    gradients accumulate so that each optimizer step still sees about as many examples.
    ``loop_options`` are :class:`LoopOptions`.

    Under several processes (``torchrun``, ``accelerate launch``), ``batch_size`` is the
    batch of the whole run: each process takes its share of every batch, so the run ends
    as a single process would (up to rounding, and to dropout's per-process randomness).

    ``groups[i]`` is the group of example ``i`` for triplet finetuning: a fractional split
    then holds out by group (see :func:`split_indices`), and a validation part on which no
    triplet exists (fewer than two groups, or no same-group pair) is not used: the run
    validates on the training data and says so. Validation batches that form no triplet are
    merged with the next batch, and a validation loss that measured no triplet never counts
    as an improvement.
    """
    from accelerate import PartialState
    from accelerate.utils import set_seed

    from bpcore import checkpoints

    check_fit_options(
        validation_split=validation_split,
        epochs=epochs,
        batch_size=batch_size,
        optimal_batch_size=optimal_batch_size,
        early_stopping_epochs=early_stopping_epochs,
        train_dataloader=train_dataloader,
        val_dataloader=val_dataloader,
        step=step,
        configure_optimizers=configure_optimizers,
        seed=seed,
        progress=progress,
        count=len(dataset),  # type: ignore[arg-type]
    )
    options = check_loop_options(**loop_options)
    state = PartialState(cpu=cpu)

    resume_from = resumed = None
    if options.resume:
        # Checked whole first: a damaged checkpoint is passed over for the one before it.
        found, skipped = checkpoints.resumable_checkpoint(options.checkpoint_dir)  # type: ignore[arg-type]
        for passed_over, reason in skipped:
            _warn(state, f"resume: skipped the checkpoint {passed_over} ({reason})")
        if found is None:
            _warn(
                state,
                f"resume: no checkpoint in {options.checkpoint_dir} yet, so the run starts from the beginning",
            )
        else:
            resume_from, resumed = found
            seed = resumed["history"]["seed"] if seed is None else seed
    seed = random.randrange(2**31) if seed is None else seed
    set_seed(seed)
    history = History(seed=seed, num_processes=state.num_processes)

    train_indices, val_indices = split_indices(len(dataset), validation_split, seed, groups)  # type: ignore[arg-type]
    if val_dataloader is not None:
        history.validated_on = "validation dataloader"
    else:
        reason = None
        if train_dataloader is not None:
            reason = "a custom train_dataloader comes without validation data"
        elif not val_indices:
            reason = (
                "holds no same-group pairs of two groups to validate triplets on"
                if groups is not None and validation_split
                else "holds nothing to validate on"
            )
        elif groups is not None and not has_triplet(groups[i] for i in val_indices):
            reason = "holds no triplet (it needs two groups, one with a same-group pair)"
        if reason is not None:
            history.validated_on = "training data"
            _warn(
                state,
                f"the validation split ({validation_split!r} of {len(dataset)} examples) {reason}: "  # type: ignore[arg-type]
                "validating on the training data, so early stopping only sees the training loss",
            )
            val_indices = train_indices

    optimal: int = optimal_batch_size or getattr(model, "optimal_batch_size", 16)
    start_batch_size = min(batch_size or optimal, len(train_indices))

    def fingerprint(size: int, accumulation: int) -> dict[str, Any]:
        # What must match for a checkpoint to continue this run; the number of processes need not.
        return {
            "examples": len(dataset),  # type: ignore[arg-type]
            "split": [len(train_indices), len(val_indices), hash(tuple(train_indices)) % 2**31],
            "batch_size": size,
            "gradient_accumulation_steps": accumulation,
            "lr_scheduler": [options.lr_scheduler, options.warmup_ratio],
        }

    if resumed is not None:
        # The resumed run keeps the batch it ran with (an out-of-memory retry may have shrunk it).
        start_batch_size = resumed["fingerprint"]["batch_size"] if batch_size is None else batch_size
        expected = fingerprint(start_batch_size, resumed["fingerprint"]["gradient_accumulation_steps"])
        if resumed["fingerprint"] != expected:
            raise InputError(
                f"the checkpoint in {resume_from} was written by a run on other data, another batch size "
                "or another learning-rate schedule "
                f"({resumed['fingerprint']}, this run: {expected}); resume with the same data and options, "
                "or give a new checkpoint_dir",
                field="resume",
            )

    def loaders(size: int) -> tuple[Any, Any]:
        from accelerate.data_loader import DataLoaderShard

        from bpcore.samplers import ProcessShard, shuffled_batches

        def make(indices: Sequence[int], shuffle: bool, part_seed: int) -> Any:
            if make_batch_plan is not None:
                positions = make_batch_plan(indices, size, part_seed)
                if not shuffle:
                    # Validation batches stay the same every epoch, so in-batch losses compare across epochs.
                    fixed = positions(0)
                    if groups is not None:
                        fixed = _with_triplets(fixed, [groups[i] for i in indices])
                    positions = lambda epoch: fixed  # noqa: E731
            elif shuffle:
                positions = lambda epoch: shuffled_batches(len(indices), size, part_seed, epoch)  # noqa: E731
            else:
                fixed = [list(range(i, min(i + size, len(indices)))) for i in range(0, len(indices), size)]
                positions = lambda epoch: fixed  # noqa: E731

            def plan(epoch: int) -> list[list[int]]:
                return [[indices[position] for position in batch] for batch in positions(epoch)]

            sampler = ProcessShard(plan, state.process_index, state.num_processes)
            return DataLoaderShard(dataset, device=state.device, batch_sampler=sampler, collate_fn=collate_fn)

        train = train_dataloader if train_dataloader is not None else make(train_indices, True, seed)
        val = (
            val_dataloader
            if val_dataloader is not None
            else (train if train_dataloader is not None else make(val_indices, False, seed + 1))
        )
        return train, val

    initial_state = _snapshot(model)
    # With no batch size given, an out-of-memory error retries with a smaller batch.
    can_retry = batch_size is None and train_dataloader is None and resumed is None

    def run(size: int) -> History:
        if size != start_batch_size:
            # A retry with a smaller batch starts again from where the run began.
            model.load_state_dict(initial_state)
            set_seed(seed)
        accumulation = (options.gradient_accumulation_steps or 1) * max(1, round(start_batch_size / size))
        history.batch_size, history.gradient_accumulation_steps = size, accumulation
        history.epochs.clear()
        history.step_losses.clear()
        train_loader, val_loader = loaders(size)
        find_unused = state.num_processes > 1 and _has_unused_parameters(model, step, train_loader, state)
        accelerator = _accelerator(cpu, options, accumulation, find_unused)
        wrapper = _StepModule(model, step)
        optimizer = _optimizer(configure_optimizers, history)
        steps_per_epoch = len(train_loader)
        scheduler = None
        if options.lr_scheduler != "constant" or options.warmup_ratio:
            from bpcore.schedules import make_scheduler

            total_steps = epochs * math.ceil(steps_per_epoch / accumulation)
            scheduler = make_scheduler(optimizer, options.lr_scheduler, options.warmup_ratio, total_steps)
        if scheduler is not None:
            accelerator.register_for_checkpointing(scheduler)
        if train_dataloader is not None or val_dataloader is not None:
            prepared = accelerator.prepare(wrapper, optimizer, train_loader, val_loader)
            wrapper, optimizer, train_loader, val_loader = prepared
        else:  # bpcore's own loaders already give each process its share of every batch
            wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
        loop = _Run(accelerator, wrapper, optimizer, scheduler, options)

        # Until an epoch validates, the best weights are the ones we started from.
        best_is_current = False
        best_loss, best_state, epochs_without_gain, first_epoch, finished = (
            math.inf,
            initial_state,
            0,
            1,
            False,
        )
        if resumed is not None:
            best_state = _load_checkpoint(accelerator, resume_from, model, initial_state)
            restored = History.from_dict(resumed["history"])
            history.epochs[:] = restored.epochs
            history.step_losses[:] = restored.step_losses
            history.best_epoch = restored.best_epoch
            history.resumed_after_epoch = first_epoch = resumed["epoch"]
            first_epoch += 1
            best_loss, epochs_without_gain = resumed["best_loss"], resumed["epochs_without_gain"]
            finished = resumed["finished"]
            # Early stopping ended the checkpointed run: "early" against this run's epochs.
            history.stopped_early = finished and resumed["epoch"] < epochs
            loop.global_step = len(history.step_losses)
        if options.log_with:
            accelerator.init_trackers("bpcore-finetune", config=_tracker_config(history, epochs, options))
        remaining = 0 if finished else max(0, epochs - first_epoch + 1)
        quiet = progress is False or not accelerator.is_local_main_process
        bar = _progress_bar(remaining * steps_per_epoch, quiet, progress)
        try:
            for epoch in range(first_epoch, first_epoch + remaining):
                started = time.perf_counter()
                for loader in (train_loader, val_loader):
                    # Accelerate's loaders also pass the epoch on to their batch sampler.
                    if hasattr(loader, "set_epoch"):
                        loader.set_epoch(epoch - 1)
                    elif hasattr(getattr(loader, "batch_sampler", None), "set_epoch"):
                        loader.batch_sampler.set_epoch(epoch - 1)
                batch_losses = _train_epoch(
                    loop, train_loader, epoch, _on_batch(bar, epoch, epochs, steps_per_epoch)
                )
                step_losses = _batch_losses(accelerator, batch_losses)
                val_loss = _validate(accelerator, loop.wrapper, val_loader, epoch)
                record = EpochRecord(
                    epoch,
                    sum(step_losses) / len(step_losses) if step_losses else math.nan,
                    val_loss,
                    seconds=round(time.perf_counter() - started, 3),
                    learning_rate=_learning_rate(optimizer),
                )
                history.epochs.append(record)
                history.step_losses.extend(step_losses)
                bar.set_postfix_str(
                    f"epoch {epoch}/{epochs} train {record.train_loss:.4f} val {record.val_loss:.4f}"
                )
                if options.log_with:
                    accelerator.log(
                        {
                            "epoch/train_loss": record.train_loss,
                            "epoch/val_loss": record.val_loss,
                            "epoch": epoch,
                        },
                        step=loop.global_step,
                    )
                # NaN (no validation batch formed a triplet) is never an improvement.
                if record.val_loss < best_loss:
                    best_loss, epochs_without_gain, history.best_epoch = record.val_loss, 0, epoch
                    if epoch == epochs and options.checkpoint_dir is None:
                        best_is_current = True  # the last epoch is the best: no copy needed
                    elif best_state is initial_state and can_retry:
                        best_state = _snapshot(model)  # a retry needs the initial weights intact
                    else:
                        _copy_into(best_state, model)
                else:
                    epochs_without_gain += 1
                    finished = bool(early_stopping_epochs) and epochs_without_gain >= early_stopping_epochs
                    history.stopped_early = finished and epoch < epochs
                if options.checkpoint_dir is not None:
                    loop_state = {
                        "epoch": epoch,
                        "history": history.as_dict(),
                        "best_loss": best_loss,
                        "epochs_without_gain": epochs_without_gain,
                        # A run that ran all its epochs may go on: resume with more epochs.
                        "finished": finished,
                        "fingerprint": fingerprint(size, accumulation),
                    }
                    checkpoints.save_checkpoint(
                        accelerator,
                        options.checkpoint_dir,
                        epoch,
                        loop_state,
                        best_state,
                        options.keep_checkpoints,
                    )
                if finished:
                    break
        except BpcoreError as error:
            error.history = history  # type: ignore[attr-defined]
            raise
        except Exception as error:
            if _out_of_memory(error):
                raise  # retried below with a smaller batch
            raise TrainingError(
                f"finetuning failed in epoch {len(history.epochs) + 1} ({type(error).__name__}: {error})",
                history,
            ) from error
        finally:
            # Also on errors and Ctrl-C: the model is left at its best weights, never half-trained.
            bar.close()
            if not best_is_current:
                model.load_state_dict(best_state)
            model.eval()
            if options.log_with:
                accelerator.end_training()
            if accelerator.device.type != "cpu":
                # Frees the device's cache; on CPU its full garbage collection would cost
                # ~0.3 s a run for nothing (the references go with this function's frame).
                accelerator.free_memory()
        return history

    if not can_retry:
        return run(start_batch_size)
    size = start_batch_size
    while True:
        try:
            return run(size)
        except BpcoreError:
            raise
        except Exception as error:
            if not _out_of_memory(error):
                raise
            if size == 1:  # even a batch of one does not fit in memory
                raise TrainingError(f"finetuning ran out of memory ({error})", history) from error
            _release_memory()
            size = max(1, int(size * 0.9))  # as accelerate's find_executable_batch_size shrinks


def _load_checkpoint(
    accelerator: Any, checkpoint: Any, model: torch.nn.Module, initial_state: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Load a checked checkpoint into the run; its best weights. A failure is an :class:`InputError`
    naming the checkpoint, and leaves the model as it was (not half-loaded)."""
    from bpcore import checkpoints

    try:
        accelerator.load_state(str(checkpoint))
        best_state = checkpoints.load_best_weights(checkpoint)
        expected = {key: tuple(value.shape) for key, value in initial_state.items()}
        if {key: tuple(value.shape) for key, value in best_state.items()} != expected:
            raise ValueError(f"{checkpoints.BEST_WEIGHTS} does not fit this model")
    except Exception as error:
        model.load_state_dict(initial_state)
        raise InputError(
            f"cannot resume from {checkpoint}: it does not fit this model and optimizer, or is damaged "
            f"({type(error).__name__}: {str(error)[:300]})",
            field="checkpoint_dir",
        ) from error
    return best_state


def _warn(state: Any, message: str) -> None:
    if state.is_main_process:  # one warning per run, not one per process
        warnings.warn(message, BpcoreWarning, stacklevel=5)


def _optimizer(configure_optimizers: Callable[[], Any], history: History) -> torch.optim.Optimizer:
    try:
        optimizer = configure_optimizers()
    except BpcoreError:
        raise
    except Exception as error:
        raise TrainingError(
            f"configure_optimizers failed ({type(error).__name__}: {error})", history
        ) from error
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise InputTypeError(
            f"returned {type(optimizer).__name__}; it must return a torch.optim.Optimizer",
            field="configure_optimizers",
        )
    return optimizer


def _accelerator(cpu: bool, options: LoopOptions, accumulation: int, find_unused: bool) -> Any:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    previous = AcceleratorState._shared_state.get("_mixed_precision")
    if previous is not None and previous != options.mixed_precision:
        # Accelerate keeps one precision per process; a later run may ask for another.
        AcceleratorState._reset_state()
    project = None
    if options.log_with:
        project = ProjectConfiguration(project_dir=str(options.log_dir), logging_dir=str(options.log_dir))
    try:
        return Accelerator(
            cpu=cpu,
            mixed_precision=options.mixed_precision,
            gradient_accumulation_steps=accumulation,
            # DDP must look for parameters the loss never reaches (e.g. BERT's pooler) on every
            # step, at a cost: only when the model has such parameters.
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused)],
            log_with=options.log_with,
            project_config=project,
        )
    except (ValueError, ImportError, NotImplementedError) as error:
        field = "log_with" if options.log_with and "track" in str(error).lower() else "mixed_precision"
        raise InputError(str(error), field=field) from error


def _has_unused_parameters(model: torch.nn.Module, step: Step, loader: Any, state: Any) -> bool:
    """Whether the loss leaves some trainable parameter without a gradient (DDP must then look for them).

    A model may say so with a ``find_unused_parameters`` attribute; otherwise one training
    step on this process's first batch finds out, and leaves no trace (weights, batch-norm
    statistics and random state are restored). Every process must configure DDP alike.
    """
    from accelerate.utils import reduce, send_to_device

    declared = getattr(model, "find_unused_parameters", None)
    if declared is not None:
        unused = bool(declared)
    else:
        saved, training = _snapshot(model), model.training
        python_random = random.getstate()
        try:
            for parameter in model.parameters():
                parameter.grad = None
            model.train()
            devices = [state.device.index or 0] if state.device.type == "cuda" else []
            # Inside: starting a DataLoader draws from torch's generator too.
            with torch.random.fork_rng(devices=devices):
                batch = send_to_device(next(iter(loader)), state.device)
                loss = step(batch, 0)
                if isinstance(loss, torch.Tensor) and loss.requires_grad:
                    loss.backward()
            unused = any(p.requires_grad and p.grad is None for p in model.parameters())
        except Exception:  # the real first step reports the problem; be safe until then
            unused = True
        finally:
            for parameter in model.parameters():
                parameter.grad = None
            model.load_state_dict(saved)
            model.train(training)
            random.setstate(python_random)
    flag = torch.tensor([float(unused)], device=state.device)
    return bool(reduce(flag, reduction="sum").item() > 0)


def _tracker_config(history: History, epochs: int, options: LoopOptions) -> dict[str, Any]:
    values = {
        "epochs": epochs,
        "batch_size": history.batch_size,
        "seed": history.seed,
        **attrs.asdict(options),
    }
    # Trackers (TensorBoard's hparams) take numbers, strings and booleans only.
    return {
        key: value if isinstance(value, (int, float, bool)) else str(value)
        for key, value in values.items()
        if value is not None
    }


def _progress_bar(total: int, quiet: bool, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    # disable=None lets tqdm hide itself when output is not a terminal.
    return tqdm(
        total=total,
        desc="finetuning",
        unit="batch",
        disable=True if quiet else (None if progress is None else False),
    )


def _on_batch(bar: Any, epoch: int, epochs: int, steps: int) -> Callable[[int], None]:
    def on_batch(batch_idx: int) -> None:
        bar.update(1)
        if not bar.disable:
            bar.set_postfix_str(f"epoch {epoch}/{epochs} step {batch_idx + 1}/{steps}", refresh=False)

    return on_batch
