"""One attempt of :func:`~bpcore.training.fit` at one batch size, in named steps.

:class:`Run` goes through ``prepare`` (loaders, Accelerate, optimizer, schedule, a resumed
checkpoint), then for each epoch ``train_epoch``, ``validate``, ``measure`` (the metrics of
``metrics=True``), ``end_epoch`` (the record, the best weights, early stopping) and
``checkpoint``, and at the end, whatever happened, ``restore_best``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from bpcore.errors import BpcoreError, InputError, InputTypeError, TrainingError
from bpcore.training import checkpoints
from bpcore.training.distributed import has_unused_parameters
from bpcore.training.history import EpochRecord, History
from bpcore.training.options import LOOP

if TYPE_CHECKING:
    from pathlib import Path

    from bpcore.training.setup import Setup


class StepModule(torch.nn.Module):
    """The step as a module: Accelerate (and DDP under it) only syncs gradients for work done
    inside a prepared module's forward."""

    def __init__(self, model: torch.nn.Module, step: Callable[[Any, int], torch.Tensor]):
        super().__init__()
        self.model = model
        self.step = step

    def forward(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.step(batch, batch_idx)


class Run:
    """One attempt of a finetuning run at batch ``size``; its steps in the order :func:`fit` takes them."""

    def __init__(self, setup: Setup, size: int):
        self.setup, self.size = setup, size
        self.model, self.options, self.history = setup.model, setup.options, setup.history
        # A smaller batch than the run began with accumulates gradients to keep the step size.
        accumulation = self.options["gradient_accumulation_steps"] or 1
        self.accumulation = accumulation * max(1, round(setup.start_batch_size / size))
        # Until an epoch validates, the best weights are the ones we started from. The best score
        # is the early-stopping quantity signed so that lower is better (see ``score``).
        self.best_state, self.best_score, self.best_is_current = setup.initial_state, math.inf, False
        self.epochs_without_gain, self.first_epoch, self.finished, self.global_step = 0, 1, False, 0
        self.bar: Any = None

    # -- prepare ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Start the attempt: loaders, Accelerate, the optimizer and its schedule, a resumed state."""
        setup = self.setup
        if self.size != setup.start_batch_size:
            from accelerate.utils import set_seed

            # A retry with a smaller batch starts again from where the run began.
            self.model.load_state_dict(setup.initial_state)
            set_seed(setup.seed)
        self.history.batch_size, self.history.gradient_accumulation_steps = self.size, self.accumulation
        self.history.epochs.clear()
        self.history.step_losses.clear()
        train_loader, val_loader = setup.loaders(self.size)
        processes = setup.state.num_processes
        find_unused = processes > 1 and has_unused_parameters(
            self.model, setup.step, train_loader, setup.state
        )
        self.accelerator = make_accelerator(setup.cpu, self.options, self.accumulation, find_unused)
        wrapper = StepModule(self.model, setup.step)
        self.optimizer = build_optimizer(
            setup.configure_optimizers, self.history, self.options["learning_rate"]
        )
        self.steps_per_epoch = len(train_loader)
        self.scheduler = self._scheduler()
        if self.options["train_dataloader"] is not None or self.options["val_dataloader"] is not None:
            prepared = self.accelerator.prepare(wrapper, self.optimizer, train_loader, val_loader)
            self.wrapper, self.optimizer, self.train_loader, self.val_loader = prepared
        else:  # bpcore's own loaders already give each process its share of every batch
            self.wrapper, self.optimizer = self.accelerator.prepare(wrapper, self.optimizer)
            self.train_loader, self.val_loader = train_loader, val_loader
        if setup.resumed is not None:
            self._restore(setup.resumed.folder, setup.resumed.loop_state)
        self._start_reporting()

    def _scheduler(self) -> Any:
        options = self.options
        if options["lr_scheduler"] == "constant" and not (options["warmup_ratio"] or options["warmup_steps"]):
            return None
        from bpcore.training.schedules import make_scheduler

        total_steps = options["epochs"] * math.ceil(self.steps_per_epoch / self.accumulation)
        scheduler = make_scheduler(
            self.optimizer,
            options["lr_scheduler"],
            options["warmup_ratio"],
            total_steps,
            options["warmup_steps"],
        )
        if scheduler is not None:
            self.accelerator.register_for_checkpointing(scheduler)
        return scheduler

    def _restore(self, folder: Path, state: dict[str, Any]) -> None:
        """Continue the checkpointed run: its weights, optimizer, history and early-stopping state."""
        self.best_state = load_checkpoint(self.accelerator, folder, self.model, self.setup.initial_state)
        restored = History.from_dict(state["history"])
        self.history.epochs[:] = restored.epochs
        self.history.step_losses[:] = restored.step_losses
        self.history.best_epoch = restored.best_epoch
        self.history.resumed_after_epoch = state["epoch"]
        self.first_epoch = state["epoch"] + 1
        # "best_loss" holds the best score (the name predates early_stopping_metric).
        self.best_score, self.epochs_without_gain = state["best_loss"], state["epochs_without_gain"]
        self.finished = state["finished"]
        # Early stopping ended the checkpointed run: "early" against this run's epochs.
        self.history.stopped_early = self.finished and state["epoch"] < self.options["epochs"]
        self.global_step = len(self.history.step_losses)

    def _start_reporting(self) -> None:
        if self.options["log_with"]:
            config = tracker_config(self.history, self.options)
            self.accelerator.init_trackers("bpcore-finetune", config=config)
        progress = self.options["progress"]
        quiet = progress is False or not self.accelerator.is_local_main_process
        self.bar = progress_bar(len(self.epochs()) * self.steps_per_epoch, quiet, progress)

    def epochs(self) -> range:
        """The epochs (1-based) this attempt trains: all, or those after a resumed checkpoint."""
        remaining = 0 if self.finished else max(0, self.options["epochs"] - self.first_epoch + 1)
        return range(self.first_epoch, self.first_epoch + remaining)

    # -- each epoch ------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> list[float]:
        """One epoch of training; the loss of each batch, averaged over the processes that shared it."""
        from bpcore.training.data import set_epoch

        for loader in (self.train_loader, self.val_loader):
            set_epoch(loader, epoch - 1)
        self.wrapper.train()
        losses = [
            self._train_batch(epoch, batch_idx, batch) for batch_idx, batch in enumerate(self.train_loader)
        ]
        gathered = gather(self.accelerator, losses)
        return gathered.mean(dim=0).tolist() if gathered.numel() else []

    def _train_batch(self, epoch: int, batch_idx: int, batch: Any) -> torch.Tensor:
        accelerator, optimizer = self.accelerator, self.optimizer
        with accelerator.accumulate(self.wrapper):
            where = f"epoch {epoch}, batch {batch_idx}"
            loss = as_loss(self.wrapper(batch, batch_idx), where)
            check_finite(loss, f"training loss in {where}")
            if loss.requires_grad:
                accelerator.backward(loss)
            if accelerator.sync_gradients:
                if self.options["max_grad_norm"] is not None:
                    accelerator.clip_grad_norm_(self.wrapper.parameters(), self.options["max_grad_norm"])
                optimizer.step()
                if self.scheduler is not None and not accelerator.optimizer_step_was_skipped:
                    self.scheduler.step()
                optimizer.zero_grad()
        self.global_step += 1
        if self.options["log_with"]:
            logged = {"train/loss": float(loss.detach()), "train/learning_rate": learning_rate(optimizer)}
            accelerator.log(logged, step=self.global_step)
        self.bar.update(1)
        if not self.bar.disable:
            epochs, steps = self.options["epochs"], self.steps_per_epoch
            self.bar.set_postfix_str(f"epoch {epoch}/{epochs} step {batch_idx + 1}/{steps}", refresh=False)
        return loss.detach()

    def validate(self, epoch: int) -> float:
        """The mean validation loss, over the batches whose loss measured something.

        A batch whose triplet loss formed no triplet (see
        :func:`bpcore.training.losses.scoring_triplets`) scores 0 without measuring anything:
        it is left out. When every batch is left out, the result is NaN and the epoch cannot
        count as an improvement.
        """
        from bpcore.training.losses import scoring_triplets

        self.wrapper.eval()
        losses = []
        with torch.no_grad():
            for batch_idx, batch in enumerate(self.val_loader):
                where = f"epoch {epoch}, batch {batch_idx}"
                with scoring_triplets() as count:
                    loss = as_loss(self.wrapper(batch, batch_idx), f"validation of {where}").detach()
                check_finite(loss, f"validation loss in {where}")
                # NaN marks a batch that measured nothing; every process gathers as many batches.
                losses.append(torch.full_like(loss.float(), math.nan) if count.formed_none else loss)
        gathered = gather(self.accelerator, losses)
        measured = gathered[~torch.isnan(gathered)]
        return float(measured.mean()) if measured.numel() else math.nan

    def measure(self, epoch: int) -> dict[str, float]:
        """The metrics of ``metrics=True`` on the validation part (else none), in eval mode.

        Computed once, on the main process (every process holds the same weights), then handed
        to the others: each keeps the same best epoch and stops at the same time.
        """
        if not self.options["metrics"]:
            return {}
        metrics: dict[str, float] = {}
        failure: Exception | None = None
        if self.accelerator.is_main_process:
            try:
                metrics = self._evaluate(epoch)
            except Exception as error:
                failure = error
        shared: list[Any] = [metrics if failure is None else f"{type(failure).__name__}: {failure}"]
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            # Every process waits here for the main one, even when it failed: none hangs.
            broadcast_object_list(shared)
        if failure is not None:
            raise failure
        if isinstance(shared[0], str):
            raise TrainingError(f"computing the metrics failed on the main process ({shared[0]})")
        return dict(shared[0])

    def _evaluate(self, epoch: int) -> dict[str, float]:
        assert self.setup.evaluate is not None  # fit refuses metrics=True without it
        self.wrapper.eval()
        with torch.no_grad():
            measured = self.setup.evaluate(self.setup.val_indices)
        return scalar_metrics(measured, epoch, self.options["early_stopping_metric"])

    def end_epoch(
        self, epoch: int, step_losses: list[float], val_loss: float, metrics: dict[str, float], started: float
    ) -> None:
        """Record the epoch, report it, and keep its weights if they are the best so far."""
        train_loss = sum(step_losses) / len(step_losses) if step_losses else math.nan
        seconds = round(time.perf_counter() - started, 3)
        record = EpochRecord(epoch, train_loss, val_loss, seconds, learning_rate(self.optimizer), metrics)
        self.history.epochs.append(record)
        self.history.step_losses.extend(step_losses)
        epochs, chosen = self.options["epochs"], self.options["early_stopping_metric"]
        # The bar shows what chooses the best epoch: the validation loss, and the metric if one does.
        name = chosen.lstrip("-")
        shown = f" {name} {metrics[name]:.4f}" if name in metrics else ""
        self.bar.set_postfix_str(f"epoch {epoch}/{epochs} train {train_loss:.4f} val {val_loss:.4f}{shown}")
        if self.options["log_with"]:
            logged = {"epoch/train_loss": train_loss, "epoch/val_loss": val_loss, "epoch": epoch}
            logged.update({f"epoch/val_{name}": value for name, value in metrics.items()})
            self.accelerator.log(logged, step=self.global_step)
        self._keep_best(epoch, score(chosen, val_loss, metrics))

    def _keep_best(self, epoch: int, value: float) -> None:
        """Keep the weights of an epoch whose :func:`score` ``value`` (lower is better) beats the
        best so far; count an epoch that does not towards early stopping."""
        epochs = self.options["epochs"]
        if not value < self.best_score:  # NaN (no validation batch formed a triplet) never improves
            self.epochs_without_gain += 1
            patience = self.options["early_stopping_epochs"]
            self.finished = bool(patience) and self.epochs_without_gain >= patience
            self.history.stopped_early = self.finished and epoch < epochs
            return
        self.best_score, self.epochs_without_gain, self.history.best_epoch = value, 0, epoch
        if epoch == epochs and self.options["checkpoint_dir"] is None:
            self.best_is_current = True  # the last epoch is the best: no copy needed
        elif self.best_state is self.setup.initial_state and self.setup.can_retry:
            self.best_state = snapshot(self.model)  # a retry needs the initial weights intact
        else:
            copy_into(self.best_state, self.model)

    def checkpoint(self, epoch: int) -> None:
        """Save the run at this epoch's end, when it has a ``checkpoint_dir``."""
        if self.options["checkpoint_dir"] is None:
            return
        loop_state = {
            "epoch": epoch,
            "history": self.history.as_dict(),
            "best_loss": self.best_score,
            "epochs_without_gain": self.epochs_without_gain,
            # A run that ran all its epochs may go on: resume with more epochs.
            "finished": self.finished,
            "fingerprint": self.setup.fingerprint(self.size, self.accumulation),
        }
        checkpoints.save_checkpoint(
            self.accelerator,
            self.options["checkpoint_dir"],
            epoch,
            loop_state,
            self.best_state,
            self.options["keep_checkpoints"],
        )

    # -- the end -------------------------------------------------------------------------------
    def restore_best(self) -> None:
        """Leave the model at its best weights in ``eval()`` mode, and close what the attempt opened."""
        if self.bar is not None:
            self.bar.close()
        if not self.best_is_current:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        if self.options["log_with"]:
            self.accelerator.end_training()
        if self.accelerator.device.type != "cpu":
            # Frees the device's cache; on CPU its full garbage collection would cost
            # ~0.3 s a run for nothing (the references go with this attempt).
            self.accelerator.free_memory()


# -- the parts the steps use ----------------------------------------------------------------------


def as_loss(loss: Any, where: str) -> torch.Tensor:
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


def check_finite(loss: torch.Tensor, what: str) -> None:
    if not torch.isfinite(loss.detach()).all():
        raise TrainingError(
            f"the {what} became {float(loss.detach())}: lower the learning rate or check the data"
        )


def gather(accelerator: Any, losses: list[torch.Tensor]) -> torch.Tensor:
    """Every process's batch losses, as a (processes, batches) tensor on the CPU."""
    if not losses:
        return torch.empty(0)
    stacked = torch.stack([loss.float().reshape(()) for loss in losses]).to(accelerator.device)
    return accelerator.gather(stacked).reshape(-1, len(losses)).cpu()


def scalar_metrics(measured: Any, epoch: int, chosen: str) -> dict[str, float]:
    """What ``evaluate`` returned, as name → float, with the ``early_stopping_metric`` among them."""
    what = f"evaluate (the metrics after epoch {epoch})"
    if not isinstance(measured, Mapping):
        raise TrainingError(f"{what} returned {type(measured).__name__}; it must return a dict of numbers")
    metrics = {}
    for name, value in measured.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TrainingError(f"{what} returned {type(value).__name__} for {name!r}; it must be a number")
        metrics[str(name)] = float(value)
    if chosen != "-loss" and chosen.lstrip("-") not in metrics:
        raise InputError(
            f"names no metric the evaluation computes; it computes {sorted(metrics)}",
            field="early_stopping_metric",
        )
    return metrics


def score(chosen: str, val_loss: float, metrics: Mapping[str, float]) -> float:
    """The ``early_stopping_metric`` of an epoch, signed so that lower is better: ``"-loss"`` is
    the validation loss, ``"accuracy"`` minus the accuracy."""
    name = chosen.lstrip("-")
    value = val_loss if name == "loss" else metrics[name]
    return value if chosen.startswith("-") else -value


def learning_rate(optimizer: Any) -> float:
    return float(optimizer.param_groups[0]["lr"])


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()}


def copy_into(buffer: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    """Copy ``model``'s weights into an earlier snapshot (cheaper than allocating a new one)."""
    with torch.no_grad():
        for key, value in model.state_dict().items():
            buffer[key].copy_(value)


def build_optimizer(
    configure_optimizers: Callable[[], Any], history: History, rate: float | None = None
) -> torch.optim.Optimizer:
    """``configure_optimizers()``'s optimizer, checked; with ``rate``, its learning rates scaled to it."""
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
    if rate is not None:
        set_learning_rate(optimizer, rate)
    return optimizer


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    """Scale every learning rate the param groups carry (``lr``, and keys ending in ``_lr`` such
    as a schedule's ``initial_lr``) by one factor, so that the largest becomes ``rate``."""
    rates = [
        (group, key)
        for group in optimizer.param_groups
        for key, value in group.items()
        if (key == "lr" or key.endswith("_lr"))
        and isinstance(value, (int, float, torch.Tensor))
        and not isinstance(value, bool)
    ]
    peak = max(float(group[key]) for group, key in rates)
    for group, key in rates:
        # Rates of 0 everywhere have no ratio to keep: each becomes ``rate``.
        group[key] = group[key] * (rate / peak) if peak > 0 else rate


def make_accelerator(cpu: bool, options: dict[str, Any], accumulation: int, find_unused: bool) -> Any:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    previous = AcceleratorState._shared_state.get("_mixed_precision")
    if previous is not None and previous != options["mixed_precision"]:
        # Accelerate keeps one precision per process; a later run may ask for another.
        AcceleratorState._reset_state()
    project = None
    if options["log_with"]:
        log_dir = str(options["log_dir"])
        project = ProjectConfiguration(project_dir=log_dir, logging_dir=log_dir)
    try:
        return Accelerator(
            cpu=cpu,
            mixed_precision=options["mixed_precision"],
            gradient_accumulation_steps=accumulation,
            # DDP must look for parameters the loss never reaches (e.g. BERT's pooler) on every
            # step, at a cost: only when the model has such parameters.
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused)],
            log_with=options["log_with"],
            project_config=project,
        )
    except (ValueError, ImportError, NotImplementedError) as error:
        field = "log_with" if options["log_with"] and "track" in str(error).lower() else "mixed_precision"
        raise InputError(str(error), field=field) from error


def load_checkpoint(
    accelerator: Any, checkpoint: Path, model: torch.nn.Module, initial_state: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Load a checked checkpoint into the run; its best weights. A failure is an :class:`InputError`
    naming the checkpoint, and leaves the model as it was (not half-loaded)."""
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


def tracker_config(history: History, options: dict[str, Any]) -> dict[str, Any]:
    """The run's settings for the trackers: the options a command line could give, and the
    batch size and seed the run used."""
    values = {name: options[name] for name, entry in LOOP.items() if entry.option.cli}
    values.update(batch_size=history.batch_size, seed=history.seed)
    # Trackers (TensorBoard's hparams) take numbers, strings and booleans only.
    return {
        key: value if isinstance(value, (int, float, bool)) else str(value)
        for key, value in values.items()
        if value is not None
    }


def progress_bar(total: int, quiet: bool, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    # disable=None lets tqdm hide itself when output is not a terminal.
    return tqdm(
        total=total,
        desc="finetuning",
        unit="batch",
        disable=True if quiet else (None if progress is None else False),
    )
