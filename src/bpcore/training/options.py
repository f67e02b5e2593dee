"""Every finetuning option, declared once.

:class:`TrainingOptions` is the declaration: each field's type says what it takes and its
:class:`Option` gives its default, bounds and one line of documentation. Everything else is
read from it: the keywords of every task's ``finetune`` (``**options: Unpack[TrainingOptions]``,
and the signature ``help`` and ``inspect`` show, see :func:`finetune_signature`), the checks
(:func:`check_options`: each bad value an :class:`~bpcore.InputError` naming its keyword), the
command line's ``--set``, ``help(bpcore.TrainingOptions)`` and the documentation site's list
of options (``docs/finetuning.md``, written at build time; ``python -m bpcore.training`` prints it).

A new option is one field here, plus the code that reads ``options["name"]`` in the loop.

This module imports no torch: ``import bpcore`` reads it.
"""

# No ``from __future__ import annotations``: the declaration's types are read at run time.

import functools
import inspect
import operator
import os
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import (
    Annotated,
    Any,
    Literal,
    NoReturn,
    TypedDict,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import attrs

from bpcore.errors import InputError, InputTypeError

#: ``validation_split``: a fraction held out, or ``(train_indices, val_indices)``.
ValidationSplit = float | tuple[Sequence[int], Sequence[int]]
#: A folder, as a string or a path.
Folder = str | os.PathLike
#: One name or a list of names.
Names = str | list[str]
#: A DataLoader, or any other iterable of batches.
Batches = Iterable[Any]
#: ``step(batch, batch_idx)`` returns the batch's loss (a scalar ``torch.Tensor``).
Step = Callable[[Any, int], Any]
#: ``configure_optimizers()`` returns a ``torch.optim.Optimizer``.
ConfigureOptimizers = Callable[[], Any]
#: ``mixed_precision`` values, handed to Accelerate.
MixedPrecision = Literal["no", "fp16", "bf16"]
#: ``lr_scheduler`` names (see :mod:`bpcore.training.schedules`).
LrScheduler = Literal["constant", "linear", "cosine"]


@attrs.frozen
class Option:
    """What a finetuning option takes beyond its type: its default, bounds and documentation.

    ``at_least`` / ``above`` bound a number from below (inclusive / exclusive), ``below`` from
    above (exclusive). ``needs`` names an option that must be given too when this one is set;
    ``excludes`` one that must not. ``cli=False`` marks a Python object the command line cannot
    give. ``check(value, field)`` replaces the check the type implies. ``spec`` marks the
    spec's own keywords (None is refused where their type does not take it; for the others
    None stands for the default).
    """

    default: Any
    doc: str
    at_least: float | None = None
    above: float | None = None
    below: float | None = None
    needs: str | None = None
    excludes: str | None = None
    cli: bool = True
    check: Callable[[Any, str], None] | None = None
    spec: bool = False


_INDEX_LISTS = (list, tuple, range)


def check_validation_split(validation_split: Any, count: int | None = None) -> None:
    """``validation_split`` is a fraction in [0, 1) or ``(train_indices, val_indices)`` of ints below ``count``."""
    field = "validation_split"
    usage = "must be a fraction in [0, 1) or a pair (train_indices, val_indices)"
    if isinstance(validation_split, (tuple, list)):
        if len(validation_split) != 2:
            raise InputError(f"{usage}; got a sequence of {len(validation_split)}", field=field)
        for name, part in zip(("train_indices", "val_indices"), validation_split):
            _check_index_list(part, count, f"{field}.{name}")
        if not len(validation_split[0]):
            raise InputError("no training indices", field=f"{field}.train_indices")
        return
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)):
        raise InputTypeError(f"{usage}; got {type(validation_split).__name__}", field=field)
    if not 0 <= validation_split < 1:  # also refuses NaN
        raise InputError(f"must be in [0, 1), got {validation_split}", field=field)


def check_metric_name(name: Any, field: str = "early_stopping_metric") -> None:
    """``name`` is a metric's name, ``-`` first when lower is better; the loss is ``"-loss"``.

    Which metrics exist depends on the task and variant: the task checks the name against them.
    """
    usage = 'expected a metric name such as "accuracy" or "-loss"'
    if not isinstance(name, str):
        raise InputTypeError(f"{usage}, got {type(name).__name__}", field=field)
    if not name.lstrip("-") or name.startswith("--"):
        raise InputError(f"{usage}, got {name!r:.60}", field=field)
    if name == "loss":  # the loss is better when lower: "loss" would keep the worst epoch
        raise InputError('the loss is better when lower: write "-loss"', field=field)


def _check_index_list(part: Any, count: int | None, field: str) -> None:
    if not isinstance(part, _INDEX_LISTS):
        raise InputTypeError(f"expected a list of example indices, got {type(part).__name__}", field=field)
    for position, index in enumerate(part):
        if isinstance(index, bool) or not hasattr(index, "__index__"):
            raise InputTypeError(
                f"item {position} is {type(index).__name__} {index!r:.40}, not an integer index", field=field
            )
        if count is not None and not 0 <= operator.index(index) < count:
            raise InputError(f"index {index} (item {position}) is outside the {count} examples", field=field)


class NamedOptions(TypedDict, total=False):
    """The options every task's ``finetune`` names in its signature (the spec passes them by position)."""

    validation_split: Annotated[
        ValidationSplit,
        Option(
            0.15,
            "the fraction of the examples held out to validate on, or `(train_indices, val_indices)`",
            check=lambda value, field: check_validation_split(value),
            spec=True,
        ),
    ]


class LoopOptions(TypedDict, total=False):
    """The options :func:`bpcore.training.fit` takes by keyword (those of :class:`TrainingOptions`
    but ``step`` and ``configure_optimizers``, which it needs)."""

    epochs: Annotated[int, Option(20, "at most this many epochs", at_least=1, spec=True)]
    batch_size: Annotated[
        int | None,
        Option(
            None,
            "examples per batch (of the whole run, under several processes); None starts at "
            "`optimal_batch_size` and, on an out-of-memory error, starts again from the initial "
            "weights with a batch 0.9 times as large, accumulating gradients to keep the step size",
            at_least=1,
            spec=True,
        ),
    ]
    optimal_batch_size: Annotated[
        int | None,
        Option(
            None,
            "the batch to start from when `batch_size` is None (None: the model's `optimal_batch_size`, else 16)",
            at_least=1,
            spec=True,
        ),
    ]
    early_stopping_epochs: Annotated[
        int,
        Option(
            1,
            "stop after this many epochs without a better validation loss, or `early_stopping_metric` "
            "(0: never stop early); the best epoch's weights are loaded back at the end",
            at_least=0,
            spec=True,
        ),
    ]
    train_dataloader: Annotated[
        Batches | None,
        Option(
            None,
            "your own training data instead of `params`: a DataLoader over a `bpcore.utils.datasets` dataset "
            "(its params and batch size are used, no step needed), or any iterable of batches your `step` takes",
            cli=False,
            spec=True,
        ),
    ]
    val_dataloader: Annotated[
        Batches | None,
        Option(None, "your own validation data, as `train_dataloader`", cli=False, spec=True),
    ]
    seed: Annotated[
        int | None,
        Option(
            None,
            "makes a run reproducible (None: a random seed; `history.seed` holds the one used)",
            at_least=0,
            below=2**32,
        ),
    ]
    progress: Annotated[
        bool | None,
        Option(None, "show a progress bar (None: only when output is a terminal)"),
    ]
    learning_rate: Annotated[
        float | None,
        Option(
            None,
            "the learning rate of the optimizer the model or the task builds (not with "
            "`configure_optimizers`); with several param groups, every rate a group carries (`lr`, "
            "and keys ending in `_lr`) is scaled by one factor, so the largest becomes `learning_rate` "
            "and the others keep their ratio to it",
            above=0,
            excludes="configure_optimizers",
        ),
    ]
    gradient_accumulation_steps: Annotated[
        int | None,
        Option(None, "batches whose gradients add up before each optimizer step (None: 1)", at_least=1),
    ]
    mixed_precision: Annotated[
        MixedPrecision,
        Option("no", 'handed to Accelerate: `"no"`, `"fp16"` (GPUs) or `"bf16"`'),
    ]
    max_grad_norm: Annotated[
        float | None,
        Option(None, "clip the gradients' total norm to this before each optimizer step", above=0),
    ]
    lr_scheduler: Annotated[
        LrScheduler,
        Option(
            "constant",
            'the learning rate after the warm-up: `"constant"`, or a `"linear"` or `"cosine"` decay to 0',
        ),
    ]
    warmup_ratio: Annotated[
        float,
        Option(
            0.0,
            "the fraction of the optimizer steps over which the learning rate first rises linearly from 0",
            at_least=0,
            below=1,
        ),
    ]
    warmup_steps: Annotated[
        int | None,
        Option(
            None,
            "the warm-up as a number of optimizer steps (instead of `warmup_ratio`)",
            at_least=1,
            excludes="warmup_ratio",
        ),
    ]
    checkpoint_dir: Annotated[
        Folder | None,
        Option(
            None,
            "save a checkpoint there at each epoch end (model, optimizer, schedule, random states, "
            "history and best weights)",
        ),
    ]
    resume: Annotated[
        bool,
        Option(
            False,
            "continue the run checkpointed in `checkpoint_dir` from its last valid checkpoint "
            "(a damaged one is skipped with a warning), or start one when there is none yet",
            needs="checkpoint_dir",
        ),
    ]
    keep_checkpoints: Annotated[int, Option(2, "how many of the newest checkpoints to keep", at_least=1)]
    log_with: Annotated[
        Names | None,
        Option(
            None,
            'Accelerate trackers (`"tensorboard"`, `"wandb"`, ...) that get the per-step and per-epoch '
            "losses, the learning rate and the metrics of `metrics`",
        ),
    ]
    log_dir: Annotated[Folder, Option("runs", "the folder the trackers write in")]
    metrics: Annotated[
        bool,
        Option(
            False,
            "compute the task's evaluation metrics (those `task.evaluate` reports as one number) on the "
            "validation part after each epoch: into `history.metrics`, the trackers and `plot_history`",
        ),
    ]
    early_stopping_metric: Annotated[
        str,
        Option(
            "-loss",
            'what picks the best epoch and stops early: `"-loss"` (the validation loss) or a metric '
            '`metrics` computes, e.g. `"accuracy"`; a leading `-` means lower is better',
            needs="metrics",
            check=check_metric_name,
        ),
    ]


class TrainingOptions(LoopOptions, total=False):
    """The keywords every task's ``finetune`` takes beyond its own (``help`` shows them in its signature).

    {options}

    Example::

        history = bpcore.TextVectorisation().finetune(
            {"texts": texts, "groups": groups}, variant="triplet", epochs=10,
            lr_scheduler="linear", warmup_ratio=0.1,
            checkpoint_dir="checkpoints", resume=True, log_with="tensorboard",
        )
        bpcore.plot_history(history, "loss.png")
    """

    step: Annotated[
        Step | None,
        Option(
            None,
            "`step(batch, batch_idx)` returns a batch's loss, instead of the variant's",
            cli=False,
            spec=True,
        ),
    ]
    configure_optimizers: Annotated[
        ConfigureOptimizers | None,
        Option(
            None,
            "`configure_optimizers()` returns the optimizer, instead of the model's or the task's",
            cli=False,
            spec=True,
        ),
    ]


# -- reading the declaration ------------------------------------------------------------------

Checker = Callable[[Any, str], None]


@attrs.frozen
class Declared:
    """One declared option: its name, type (``hint``), :class:`Option`, and the check its type implies."""

    name: str
    hint: Any
    option: Option
    optional: bool
    check_type: Checker


def _without_none(hint: Any) -> tuple[Any, bool]:
    """``hint`` without ``None``, and whether it took None."""
    if get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint):
        rest = tuple(arg for arg in get_args(hint) if arg is not type(None))
        return functools.reduce(operator.or_, rest), True
    return hint, False


def _refuse(what: str, value: Any, field: str) -> NoReturn:
    raise InputTypeError(f"expected {what}, got {type(value).__name__} {value!r:.40}", field=field)


def _check_integer(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _refuse("an integer", value, field)


def _check_number(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _refuse("a number", value, field)
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"must be a finite number, got {value}", field=field)


def _check_bool(value: Any, field: str) -> None:
    if not isinstance(value, bool):
        _refuse("true or false", value, field)


def _check_folder(value: Any, field: str) -> None:
    if not isinstance(value, (str, os.PathLike)):
        _refuse("a folder path", value, field)


def _check_names(value: Any, field: str) -> None:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        _refuse("a name or a list of names, e.g. 'tensorboard'", value, field)


def _check_function(value: Any, field: str) -> None:
    if not callable(value):
        _refuse("a function", value, field)


def _check_batches(value: Any, field: str) -> None:
    if not hasattr(value, "__iter__") or isinstance(value, (str, bytes, Mapping)):
        _refuse("a DataLoader (or another iterable of batches)", value, field)


def _choice(choices: tuple[Any, ...]) -> Checker:
    def check(value: Any, field: str) -> None:
        if value not in choices:
            raise InputError(f"must be one of {list(choices)}, got {value!r:.60}", field=field)

    return check


#: The check each declared type implies; a type missing here needs its own ``check=``.
_TYPE_CHECKS: dict[Any, Checker] = {
    int: _check_integer,
    float: _check_number,
    bool: _check_bool,
    Folder: _check_folder,
    Names: _check_names,
    Batches: _check_batches,
    Step: _check_function,
    ConfigureOptimizers: _check_function,
}


def _declared(typed_dict: type) -> dict[str, Declared]:
    """The options a TypedDict of ``Annotated[type, Option(...)]`` fields declares, in order."""
    declared = {}
    for name, annotated in get_type_hints(typed_dict, include_extras=True).items():
        hint, option = get_args(annotated)[:2]
        bare, optional = _without_none(hint)
        if option.check is not None:
            check = option.check
        elif get_origin(bare) is Literal:
            check = _choice(get_args(bare))
        elif bare in _TYPE_CHECKS:
            check = _TYPE_CHECKS[bare]
        else:
            raise TypeError(f"{typed_dict.__name__}.{name}: no check for {bare!r}; give the Option a check=")
        declared[name] = Declared(name, hint, option, optional, check)
    return declared


#: Every finetuning option: the named ``validation_split``, then the keywords of :class:`TrainingOptions`.
NAMED: dict[str, Declared] = _declared(NamedOptions)
TRAINING: dict[str, Declared] = _declared(TrainingOptions)
LOOP: dict[str, Declared] = {name: TRAINING[name] for name in LoopOptions.__annotations__}
ALL: dict[str, Declared] = {**NAMED, **TRAINING}


# -- checks -----------------------------------------------------------------------------------


def _bounds(option: Option, integer: bool) -> str:
    low = f"[{option.at_least}" if option.at_least is not None else f"({option.above}"
    if option.below is not None:
        text = f"in {low}, {option.below})"
    else:
        text = f">= {option.at_least}" if option.at_least is not None else f"> {option.above}"
    return f"an integer {text}" if integer else text


def _check_bounds(value: Any, option: Option, integer: bool, field: str) -> None:
    low_ok = (option.at_least is None or value >= option.at_least) and (
        option.above is None or value > option.above
    )
    if not low_ok or (option.below is not None and not value < option.below):
        raise InputError(f"must be {_bounds(option, integer)}, got {value}", field=field)


def check_option(name: str, value: Any, declared: Mapping[str, Declared] = ALL) -> None:
    """Check one option's value against its declaration; an :class:`~bpcore.InputError` names it."""
    entry = declared[name]
    if value is None:
        if entry.optional or not entry.option.spec:
            return  # None: the default
        _refuse(_describe(entry), value, name)
    entry.check_type(value, name)
    bounded = entry.option.at_least is not None or entry.option.above is not None
    if bounded and entry.check_type in (_check_integer, _check_number):
        _check_bounds(value, entry.option, entry.check_type is _check_integer, name)


def _describe(entry: Declared) -> str:
    names: dict[Checker, str] = {_check_integer: "an integer", _check_number: "a number"}
    return names.get(entry.check_type, "a value")


def check_options(values: Mapping[str, Any], declared: Mapping[str, Declared] = ALL) -> None:
    """Check ``values`` (keyword → value) against the ``declared`` options, before any training step.

    Raises :class:`~bpcore.InputError` (or :class:`~bpcore.InputTypeError`) naming the keyword:
    an unknown one, a value of the wrong type or out of bounds, an option given without the
    one it ``needs`` or with the one it ``excludes``.

    Example::

        check_options({"epochs": 0})   # InputError: epochs: must be an integer >= 1, got 0
    """
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise InputTypeError(
            f"unknown finetuning option(s) {unknown}; beyond its own arguments finetune takes "
            f"{sorted(TRAINING)}",
            field=unknown[0],
        )
    for name, value in values.items():
        check_option(name, value, declared)
    for name, value in values.items():
        option = declared[name].option
        if value is None or value is False:
            continue
        needed = values.get(option.needs) if option.needs is not None else True
        if needed is None or needed is False:  # a flag it needs counts only when it is on
            raise InputError(f"needs {option.needs} too", field=name)
        if option.excludes is not None and values.get(option.excludes) is not None:
            raise InputError(f"cannot be given together with {option.excludes}", field=name)


def with_defaults(values: Mapping[str, Any], declared: Mapping[str, Declared] = LOOP) -> dict[str, Any]:
    """``values`` with every option of ``declared`` that is not given (or None, beyond the spec's) at its default."""
    resolved = {name: entry.option.default for name, entry in declared.items()}
    resolved.update(
        (name, value)
        for name, value in values.items()
        if name in declared and (value is not None or declared[name].optional)
    )
    return resolved


def with_model_defaults(arguments: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's ``arguments`` over a model's ``finetune_defaults``.

    A default is dropped where the caller gives an option it cannot go with (a model's
    ``warmup_steps`` gives way to the caller's ``warmup_ratio``).
    """
    given = {name for name, value in arguments.items() if value is not None}
    kept = {
        name: value
        for name, value in defaults.items()
        if name not in given and (name not in TRAINING or TRAINING[name].option.excludes not in given)
    }
    return {**kept, **arguments}


def split_options(arguments: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``arguments`` as (the declared :class:`TrainingOptions`, the rest: a task's own options)."""
    options = {key: value for key, value in arguments.items() if key in TRAINING}
    return options, {key: value for key, value in arguments.items() if key not in TRAINING}


# -- signatures and documentation ---------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _spec_first(declared: Mapping[str, Declared]) -> list[tuple[str, Declared]]:
    """The options with the spec's keywords first, in the spec's order, then the others."""
    return sorted(declared.items(), key=lambda item: not item[1].option.spec)


def finetune_signature(function: F) -> F:
    """Show every declared option in ``function``'s signature (``help``, ``inspect``, the CLI).

    ``function`` names ``params``, ``validation_split`` and the task's own options, and takes
    the rest as ``**options: Unpack[TrainingOptions]``; its signature then lists those as
    keyword-only parameters with their declared defaults.
    """
    signature = inspect.signature(function)
    named = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    keywords = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=entry.option.default, annotation=entry.hint
        )
        for name, entry in _spec_first(TRAINING)
        if name not in signature.parameters
    ]
    # inspect reads __signature__ first; functions do not declare it.
    function.__signature__ = signature.replace(parameters=named + keywords)  # type: ignore[attr-defined]
    return function


def options_markdown() -> str:
    """The list of finetuning options the site's finetuning page shows: one line each, with its default."""
    lines = []
    # The spec's keywords first, in the spec's order.
    for name, entry in _spec_first(ALL):
        default = "" if entry.option.default is None else f", default `{entry.option.default!r}`"
        lines.append(f"- `{name}`{default}: {entry.option.doc}.")
    return "\n".join(lines) + "\n"


def _options_rst() -> str:
    lines = []
    for name, entry in LOOP.items():
        default = "" if entry.option.default is None else f" (default ``{entry.option.default!r}``)"
        lines.append(f"- ``{name}``{default}: {entry.option.doc.replace('`', '``')}.")
    return "\n    ".join(lines)


TrainingOptions.__doc__ = (TrainingOptions.__doc__ or "").replace("{options}", _options_rst())
