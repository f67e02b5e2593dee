"""The ``bpcore`` command: list models and plugins, run a task, finetune one from a data file.

``list-models`` and ``plugins`` import no torch and no model library.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bpcore import cli_arguments
from bpcore.errors import (
    BpcoreError,
    InputError,
    ModelNotFoundError,
    TaskNotSupportedError,
)
from bpcore.precision import PRECISIONS
from bpcore.tasknames import TASKS

if TYPE_CHECKING:
    from bpcore.tasks import Task
    from bpcore.training import History

#: Exit statuses: a usage error (bad arguments, unknown model, bad input), a failure, Ctrl-C.
EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130
#: bpcore errors that mean the command line asked for something wrong (the rest are failures).
USAGE_ERRORS = (InputError, ModelNotFoundError, TaskNotSupportedError)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``bpcore: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"bpcore: error: {message} (see {self.prog} --help)\n")


def _print_json(value: Any) -> None:
    if isinstance(value, list) and value and all(isinstance(item, (int, float, list)) for item in value):
        # Vectors: one per line, not one number per line.
        rows = [value] if isinstance(value[0], (int, float)) else value
        print(
            "[" + ",\n ".join(json.dumps(row) for row in rows) + "]" if len(rows) > 1 else json.dumps(rows[0])
        )
        return
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _list_models(args: argparse.Namespace) -> int:
    from bpcore.models.auto import list_model_rows
    from bpcore.plugins.registry import get_registry

    if args.limit is not None and args.limit < 0:
        raise InputError(f"must be 0 or more, got {args.limit}", field="--limit")
    rows = list_model_rows(task=args.task, limit=args.limit, pattern=args.pattern, plugin=args.plugin)
    clashes = get_registry().clashes()
    if clashes:
        print(
            f"bpcore: warning: {len(clashes)} name clash(es) between plugins; "
            "clashing models are listed as plugin/name (see `bpcore plugins`)",
            file=sys.stderr,
        )
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        if args.pattern or args.plugin:
            anything = bool(list_model_rows(task=args.task))
            print(
                "no model "
                + (f"name matches {args.pattern!r}" if args.pattern else "")
                + (" and " if args.pattern and args.plugin else "")
                + (f"of plugin {args.plugin!r}" if args.plugin else "")
                + (f" for {args.task}" if args.task else "")
                + (
                    ""
                    if anything
                    else "; no models are registered at all: install a plugin, e.g. pip install bp-st"
                )
            )
        else:
            print(
                "no models registered"
                + (f" for {args.task}" if args.task else "")
                + ": install a plugin, e.g. pip install bp-st"
            )
        return 0
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        default = f"  [default: {', '.join(row['default_for'])}]" if row["default_for"] else ""
        aliases = f"  (aliases: {', '.join(row['aliases'])})" if row["aliases"] else ""
        print(f"{row['name']:<{width}}  {', '.join(row['tasks'])}{default}{aliases}")
        if args.verbose and row["description"]:
            print(f"{'':<{width}}  {row['description']}")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from bpcore.plugins.manager import plugin_infos
    from bpcore.plugins.registry import get_registry

    registry = get_registry()
    counts: dict[str, int] = {}
    for spec in registry.specs.values():
        counts[spec.plugin or "?"] = counts.get(spec.plugin or "?", 0) + 1
    rows: list[dict[str, Any]] = []
    for info in plugin_infos():
        problems = list(info.problems) + [
            problem.message for problem in registry.problems if problem.plugin == info.name
        ]
        rows.append(
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "first_party": info.first_party,
                "models": counts.get(info.name, 0),
                "folder_formats": [f.description for f in registry.folder_formats if f.plugin == info.name],
                "module_paths": sorted(
                    f"bpcore.models.{path}"
                    for path, claims in registry.module_aliases.items()
                    if claims[0].plugin == info.name
                ),
                "error": info.error,
                "problems": problems,
            }
        )
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no plugins installed: pip install bp-st (or bp-hf, bp-clip, bp-effnet)")
    for row in rows:
        source = (
            f"{row['distribution']} {row['version']}" if row["distribution"] else "registered at run time"
        )
        status = f"FAILED: {row['error']}" if row["error"] else f"{row['models']} models"
        print(f"{row['name']:<12} {source:<24} {status}")
        for description in row["folder_formats"]:  # the plain model folders it loads (bpcore.load(path))
            print(f"{'':<12} loads: {description}")
        for problem in row["problems"]:
            print(f"{'':<12} problem: {problem}")
    return 0


def _parse_setting(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(raw)
    except json.JSONDecodeError:
        return key.replace("-", "_"), raw


IMAGE_TEXT = "image-text-vectorisation"


def _run(args: argparse.Namespace) -> int:
    from bpcore.tasks import TASK_CLASSES

    task_class = TASK_CLASSES[args.task]
    kwargs = _run_options(args, list(inspect.signature(task_class.__call__).parameters)[1:])
    if args.data is not None:
        return _run_file(args, kwargs)
    if args.out is not None:
        raise InputError("needs --data: the rows to answer", field="--out")
    if not args.inputs:
        raise InputError("give the inputs to run on, or --data FILE --out FILE", field="inputs")
    if args.task == "qa" and args.context is None:
        raise InputError("is required for qa", field="--context")
    if args.task == IMAGE_TEXT and args.text is None:
        raise InputError("is required for image-text-vectorisation, one per image", field="--text")
    inputs: Any = args.inputs[0] if len(args.inputs) == 1 else list(args.inputs)
    task = task_class(args.model, device=args.device, precision=args.precision)
    if args.task == "qa":
        output = task(inputs, args.context, **kwargs)
    elif args.task == "image-text-vectorisation":
        output = task(inputs, args.text[0] if len(args.text) == 1 else args.text, **kwargs)
    else:
        output = task(inputs, **kwargs)
    _print_json(output)
    return 0


def _run_options(args: argparse.Namespace, parameters: list[str]) -> dict[str, Any]:
    """The task keywords of ``bpcore run`` (--set, --labels, --top-k), checked against the task's."""
    kwargs: dict[str, Any] = dict(args.set or [])
    # The items come from the positional inputs (and --context, --text); --set sets the rest.
    items = {"text", "image", "question", "context"}
    if "return_tensor" in kwargs:
        raise InputError(
            "the command line prints JSON, so it cannot return a tensor", field="--set return_tensor"
        )
    for key in kwargs:
        if key in items:
            option = {"context": "--context", "text": "--text"}.get(key, "the positional inputs")
            option = "a column of --data" if args.data is not None else option
            raise InputError(f"give {key} with {option}, not --set", field=f"--set {key}")
    settable = sorted(set(parameters) - items - {"return_tensor"})
    unknown = sorted(set(kwargs) - set(settable))
    if unknown:
        raise InputError(
            f"{args.task} takes no option {unknown[0]!r}; it takes {settable or 'none'}", field="--set"
        )
    options = {
        "--labels": ("labels", args.labels),
        "--top-k": ("top_k", args.top_k),
        "--context": ("context", args.context),
        "--text": ("text", args.text),
    }
    for option, (parameter, value) in options.items():
        if value is not None and (
            parameter not in parameters or (parameter == "text" and args.task != IMAGE_TEXT)
        ):
            raise InputError(f"{args.task} takes no {option}", field=option)
    if args.labels is not None:
        kwargs["labels"] = args.labels
    if args.top_k is not None:
        kwargs["top_k"] = args.top_k
    return kwargs


def _run_file(args: argparse.Namespace, kwargs: dict[str, Any]) -> int:
    """``bpcore run TASK --data IN --out OUT``: every row's answer into OUT, going on from what OUT holds."""
    from bpcore.files import run_file

    if args.inputs:
        raise InputError("give the inputs on the command line or with --data, not both", field="--data")
    if args.out is None:
        raise InputError(
            "is required with --data: the JSON Lines file to write the answers to", field="--out"
        )
    if args.text is not None:
        raise InputError("with --data, the text of each image is a column of the data", field="--text")
    if args.context is not None:
        kwargs["context"] = args.context  # one context for every question
    try:
        summary = run_file(
            args.task,
            args.data,
            args.out,
            model=args.model,
            device=args.device,
            precision=args.precision,
            batch_size=args.batch_size,
            id_column=args.id_column,
            overwrite=args.overwrite,
            progress=False if args.quiet else None,
            **kwargs,
        )
    except KeyboardInterrupt:
        _say(f"the answers so far are in {args.out}: run the same command again to go on from there")
        raise
    if not args.quiet:
        rate = summary.answered / summary.seconds if summary.seconds > 0 else 0.0
        resumed = f" (going on after the {summary.resumed} already there)" if summary.resumed else ""
        _say(
            f"answered {summary.answered} rows{resumed} in {summary.seconds:.1f}s "
            f"({rate:.0f} rows/s); {summary.rows} answers in {summary.out}"
        )
    return 0


# -- finetune ----------------------------------------------------------------------------------


def _settable(task_class: type[Task]) -> tuple[list[str], set[str]]:
    """The finetune keywords ``--set`` can give (the task's named ones and the declared options), and
    those it cannot (the data comes from --data; the others are Python objects)."""
    from bpcore.training.options import TRAINING

    named = [
        name for name in inspect.signature(task_class.finetune).parameters if name not in ("self", "params")
    ]
    python_only = {"params"} | {name for name, entry in TRAINING.items() if not entry.option.cli}
    settable = sorted({*named, *TRAINING} - python_only)
    return settable, python_only


def _finetune_options(args: argparse.Namespace, task_class: type[Task]) -> dict[str, Any]:
    """The keywords for ``finetune``: only those the user gave, so the task's defaults stay."""
    settable, python_only = _settable(task_class)
    parameters = inspect.signature(task_class.finetune).parameters
    settings = dict(args.set or [])
    for key in settings:
        if key in python_only:
            raise InputError(f"{key} cannot be given on the command line", field=f"--set {key}")
        if key not in settable:
            raise InputError(
                f"{args.task} finetuning takes no option {key!r}; it takes {', '.join(settable)}",
                field="--set",
            )
    given = {
        "--variant": ("variant", args.variant),
        "--epochs": ("epochs", args.epochs),
        "--batch-size": ("batch_size", args.batch_size),
        "--validation-split": ("validation_split", args.validation_split),
        "--early-stopping-epochs": ("early_stopping_epochs", args.early_stopping_epochs),
        "--seed": ("seed", args.seed),
        "--checkpoint-dir": ("checkpoint_dir", args.checkpoint_dir),
        "--resume": ("resume", True if args.resume else None),
        "--quiet": ("progress", False if args.quiet else None),
    }
    options = dict(settings)
    for option, (keyword, value) in given.items():
        if value is None:
            continue
        if keyword in settings:
            raise InputError(f"given twice, as {option} and as --set {keyword}", field=option)
        if keyword == "variant" and "variant" not in parameters:
            raise InputError(f"{args.task} has no finetuning variants", field=option)
        options[keyword] = value
    from bpcore.training.options import ALL, check_options

    # The declared options are checked now, before the data is read and the model loads.
    check_options({key: value for key, value in options.items() if key in ALL})
    return options


def _save_target(value: str) -> dict[str, Any]:
    """``--save``: a model name (saved under $BPCORE_HOME) or, with a slash or a leading dot, a folder."""
    from bpcore.naming import NAME_PATTERN, check_model_name

    # _check_target is saving's own refusal (the working folder, a folder that is no model).
    from bpcore.saving import _check_target, home

    if os.sep in value or "/" in value or value.startswith((".", "~")):
        path = Path(value).expanduser()
        target: dict[str, Any] = {"path": path}
        if NAME_PATTERN.match(path.name):
            target["name"] = path.name
    else:
        check_model_name(value, field="--save")
        path, target = home() / value, {"name": value}
    # Before training, so a finished run is never lost to a folder it may not replace.
    _check_target(path, overwrite=True)
    return target


def _check_plot(value: str) -> None:
    import importlib.util

    if Path(value).suffix.lower() != ".png":
        raise InputError(f"must end in .png, got {value!r}", field="--plot")
    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("needs matplotlib: pip install 'bpcore[plot]'", field="--plot")


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Warnings (e.g. validating on the training data) as ``bpcore: warning: ...`` lines, not source dumps."""
    import warnings

    def show(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        _say(f"warning: {message}")

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _best(history: History) -> Any:
    return next((record for record in history.epochs if record.epoch == history.best_epoch), None)


def _chosen_value(history: History, record: Any) -> str:
    """What made ``record``'s epoch the best: its validation loss, or its ``early_stopping_metric``."""
    name = history.early_stopping_metric.lstrip("-")
    if name in record.metrics:
        return f"{name} {_loss(record.metrics[name])}"
    return f"val loss {_loss(record.val_loss)}"


def _summary(
    history: History, seconds: float, variant: str | None, saved: Path | None, plot: Path | None
) -> str:
    """The table of epochs (the best marked ``*``, a column per metric of ``metrics=True``) and
    what the run did, as plain aligned text."""
    names = list(dict.fromkeys(name for record in history.epochs for name in record.metrics))
    headers = ("epoch", "train loss", "val loss", *names, "seconds")
    rows = [
        (
            f"{record.epoch}{'*' if record.epoch == history.best_epoch else ' '}",
            _loss(record.train_loss),
            _loss(record.val_loss),
            *(_loss(record.metrics.get(name)) for name in names),
            f"{record.seconds:.2f}",
        )
        for record in history.epochs
    ]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in (headers, *rows)]
    best = _best(history)
    lines.append("")
    lines.append(
        f"best epoch: {best.epoch} ({_chosen_value(history, best)})"
        if best is not None
        else "best epoch: none (no epoch measured a validation loss)"
    )
    if history.epochs:
        stopped = f"yes, after epoch {history.epochs[-1].epoch}" if history.stopped_early else "no"
        lines.append(f"stopped early: {stopped}")
    lines.append(f"validated on: {history.validated_on}")
    if variant is not None:
        lines.append(f"variant: {variant}")
    if getattr(history, "resumed_after_epoch", None) is not None:
        lines.append(f"resumed after epoch: {history.resumed_after_epoch}")
    if getattr(history, "num_processes", 1) > 1:
        lines.append(f"processes: {history.num_processes}")
    lines.append(f"batch size: {history.batch_size}")
    lines.append(f"seed: {history.seed}")
    lines.append(f"time: {seconds:.2f}s")
    if saved is not None:
        lines.append(f"saved to: {saved}")
    if plot is not None:
        lines.append(f"plot: {plot}")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """JSON-ready: NaN and infinite losses (which JSON cannot hold) as null, paths as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _finetune(args: argparse.Namespace) -> int:
    from bpcore.datafiles import choose_variant, locate, read_params
    from bpcore.saving import save
    from bpcore.tasks import TASK_CLASSES

    task_class = TASK_CLASSES[args.task]
    # Everything the command line says is checked before the model loads and the data is read.
    options = _finetune_options(args, task_class)
    target = _save_target(args.save) if args.save is not None else None
    if args.plot is not None:
        _check_plot(args.plot)
    params = read_params(args.data, task=task_class)
    variant = choose_variant(task_class, params, options.get("variant"))
    if "variant" not in options and variant is not None and variant != next(iter(task_class.variants)):
        options["variant"] = variant  # the columns fit another variant than the default
    try:  # a bad row is reported before the model takes its time to load
        task_class.check_params(params, variant)
    except InputError as error:
        raise locate(error, params) from None
    task = task_class(args.model, device=args.device)
    if not args.quiet and sys.stderr.isatty():  # with the progress bar; never in front of an error in a log
        model = getattr(task.model, "name", None) or type(task.model).__name__
        _say(
            f"finetuning {model} for {args.task}"
            + (f" ({variant})" if len(task_class.variants) > 1 else "")
            + f" on {len(next(iter(params.values())))} examples"
        )
    started = time.perf_counter()
    try:
        with _warnings_as_lines():
            history = task.finetune(params, **options)
    except BpcoreError as error:
        if _debugging():
            raise
        partial: History | None = getattr(error, "history", None)
        # A problem with a row of the data names its line in the file, not its index in params.
        located = locate(error, params) if isinstance(error, InputError) else error
        if partial is None or not partial.epochs:
            raise located from None
        # The loop left the model at its best epoch's weights: keep them where the user asked.
        _say(f"error: {located}")
        best = _best(partial)
        note = f"{len(partial.epochs)} epoch(s) finished before the error"
        if best is not None and target is not None:
            folder = save(task.model, **target)
            note += (
                f"; saved the weights of the best, epoch {best.epoch} "
                f"({_chosen_value(partial, best)}), to {folder}"
            )
        elif best is not None:
            note += f"; the best, epoch {best.epoch}, was not saved (--save NAME keeps it)"
        _say(note)
        return EXIT_USAGE if isinstance(error, USAGE_ERRORS) else EXIT_FAILURE
    seconds = time.perf_counter() - started
    saved = save(task.model, **target) if target is not None else None
    from bpcore.training.distributed import process_index

    if process_index() != 0:  # under torchrun / accelerate launch, the main process reports
        return 0
    plot = None
    if args.plot is not None:
        from bpcore.plotting import plot_history

        plot = plot_history(history, args.plot)
    variant = variant if len(task_class.variants) > 1 else None
    if args.json:
        print(json.dumps(_plain({**history.as_dict(), "variant": variant, "saved": saved, "plot": plot})))
    else:
        print(_summary(history, seconds, variant, saved, plot))
    return 0


def _debugging() -> bool:
    return os.environ.get("BPCORE_DEBUG", "") not in ("", "0")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bpcore", description="Use and finetune state-of-the-art models.")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list-models", help="list the registered models")
    listing.add_argument("--task", choices=TASKS, help="only models for this task")
    listing.add_argument("--pattern", help="only names matching this pattern, e.g. 'gpt2*'")
    listing.add_argument("--plugin", help="only the models of this plugin, e.g. 'hf' (see `bpcore plugins`)")
    listing.add_argument("--limit", type=int, help="at most this many models")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("-v", "--verbose", action="store_true", help="print descriptions too")
    listing.set_defaults(handler=_list_models)

    plugins = commands.add_parser("plugins", help="list installed plugins and any that failed to load")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=_plugins)

    from bpcore.serving.commands import add_commands

    add_commands(commands)

    run = commands.add_parser(
        "run",
        help="run a task and print its JSON output, or answer every row of a data file",
        description=(
            "Run a task on one or more inputs (texts, questions or image paths) and print JSON, or\n"
            "answer every row of a data file (--data) into a JSON Lines file (--out).\n\n"
            "With --data, the file is JSON Lines, CSV or Parquet; each row holds the task's\n"
            "arguments by name, and optionally an id, e.g. for text-vectorisation:\n\n"
            '  {"id": "a7", "text": "iPhone 12 128GB"}\n\n'
            "qa rows hold question and context, text-classification rows text (and optionally\n"
            "their own labels). Each line of --out is one row's answer, in order:\n\n"
            '  {"row": 1, "id": "a7", "answer": [0.0123, ...]}\n\n'
            "A stopped run goes on from what --out already holds when run again."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  bpcore run emotion 'I love it'\n  bpcore run text-vectorisation --data texts.jsonl --out vectors.jsonl",
    )
    run.add_argument("task", choices=TASKS)
    inputs = run.add_argument("inputs", nargs="+", help="texts, questions (qa) or image paths (image tasks)")
    # None with --data. (nargs="*" would match no inputs before the options: "run TASK --model M text" fails.)
    inputs.required = False
    run.add_argument(
        "--data", metavar="FILE", help="answer every row of this file: .jsonl, .ndjson, .csv or .parquet"
    )
    run.add_argument("--out", metavar="FILE", help="with --data: the .jsonl file the answers go to")
    from bpcore.files import DEFAULT_BATCH_SIZE

    run.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"with --data: rows per model call (default: {DEFAULT_BATCH_SIZE})",
    )
    run.add_argument(
        "--id-column",
        default="id",
        metavar="NAME",
        help="with --data: the column copied to each answer (default: id)",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="with --data: start again, replacing what --out holds"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="with --data: no progress bar, no summary")
    cli_arguments.add_model(run)
    cli_arguments.add_device(run)
    run.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="bf16 pays only where the CPU (AMX, avx512-bf16) or GPU has it; auto: bf16 there, else fp32",
    )
    run.add_argument("--context", help="qa: the context to answer from")
    run.add_argument("--labels", nargs="+", help="classification: the labels to score")
    run.add_argument("--top-k", type=int, help="classification: keep the k most likely labels")
    run.add_argument("--text", nargs="+", help="image-text-vectorisation: the text of each image")
    run.add_argument(
        "--set",
        type=_parse_setting,
        action="append",
        metavar="KEY=VALUE",
        help="any other task keyword, e.g. max_length=40",
    )
    run.set_defaults(handler=_run)

    _add_finetune(commands)
    from bpcore.evaluation.commands import add_commands as add_evaluate

    add_evaluate(commands)
    return parser


def _add_finetune(commands: Any) -> None:
    """``bpcore finetune``: the spec's common options as flags; ``--set`` gives any other finetune keyword."""
    finetune = commands.add_parser(
        "finetune",
        help="finetune a model on a data file and print a summary",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Finetune a task's model on a data file, print a summary table and exit.\n\n"
            "The file is JSON Lines (.jsonl, .ndjson), CSV (.csv) or JSON (.json); its columns are\n"
            "the task's finetuning params keys, e.g. for text-classification:\n\n"
            '  {"texts": "The senate passed the bill", "labels": "politics"}\n'
            '  {"texts": "A telescope saw a new comet", "labels": "science"}\n\n'
            "In CSV, a cell holding a JSON list (multi-label labels, prev_qas) is read as JSON.\n"
            "Image paths are relative to the data file's folder."
        ),
        epilog="example:\n  bpcore finetune text-classification --data train.jsonl --epochs 5 --save my-classifier",
    )
    finetune.add_argument("task", choices=TASKS)
    cli_arguments.add_data(finetune)
    cli_arguments.add_model(finetune)
    finetune.add_argument("--variant", help="the finetuning variant (default: the one the columns fit)")
    finetune.add_argument("--epochs", type=int, metavar="N", help="at most this many epochs")
    finetune.add_argument(
        "--batch-size", type=int, metavar="N", help="examples per batch (default: the model's optimal)"
    )
    finetune.add_argument(
        "--validation-split", type=float, metavar="F", help="the fraction held out to validate on"
    )
    finetune.add_argument(
        "--early-stopping-epochs",
        type=int,
        metavar="N",
        help="stop after N epochs without a better validation loss, or early_stopping_metric (0: never)",
    )
    finetune.add_argument("--seed", type=int, metavar="N", help="make the run reproducible")
    finetune.add_argument(
        "--save",
        metavar="NAME",
        help="save the finetuned model under this name (in $BPCORE_HOME), or to a folder path",
    )
    finetune.add_argument("--plot", metavar="PATH", help="draw the loss curves to this .png file")
    finetune.add_argument("--checkpoint-dir", metavar="DIR", help="save a checkpoint after each epoch here")
    finetune.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --checkpoint-dir"
    )
    cli_arguments.add_device(finetune)
    finetune.add_argument(
        "--set",
        type=_parse_setting,
        action="append",
        metavar="KEY=VALUE",
        help="any other finetune keyword, e.g. max_length=64, learning_rate=1e-4 or lr_scheduler=cosine",
    )
    finetune.add_argument("--json", action="store_true", help="print the history as JSON, not a table")
    finetune.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    finetune.set_defaults(handler=_finetune)


def _say(message: str) -> None:
    """One line on stderr (never raising: stderr may be gone too)."""
    text = " ".join(str(message).split())
    try:
        print(f"bpcore: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


class _PluginInterrupt(Exception):
    """A plugin (not the user) raised KeyboardInterrupt while bpcore loaded it."""

    def __init__(self, plugin: str | None):
        super().__init__(plugin)
        self.plugin = plugin


def _interrupting_plugin(error: BaseException) -> str | None:
    """The plugin whose import or hook raised ``error`` (from the loader's frames), if any."""
    traceback = error.__traceback__
    plugin = None
    while traceback is not None:
        frame = traceback.tb_frame
        if frame.f_code.co_name == "_load_entry_points" and "entry_point" in frame.f_locals:
            plugin = getattr(frame.f_locals["entry_point"], "name", plugin)
        elif frame.f_code.co_name == "_call_hook" and "impl" in frame.f_locals:
            plugin = getattr(frame.f_locals["impl"], "plugin_name", plugin)
        traceback = traceback.tb_next
    return plugin


def _listing(
    handler: Callable[[argparse.Namespace], int], args: argparse.Namespace, signalled: list[bool]
) -> int:
    """Run ``list-models`` or ``plugins``; a plugin raising KeyboardInterrupt is left out, not fatal."""
    from bpcore.plugins import manager as plugins

    skipped: list[str] = []
    while True:
        try:
            return handler(args)
        except KeyboardInterrupt as error:
            plugin = None if signalled[0] else _interrupting_plugin(error)
            if plugin is None or plugin in skipped or len(skipped) > 20:
                raise
            skipped.append(plugin)
            _say(f"warning: plugin {plugin!r} raised KeyboardInterrupt while loading; listing without it")
            names = [entry.name for entry in _entry_points() if entry.name not in skipped]
            allowed = plugins._allowed_entry_points()
            if allowed is not None:
                names = [name for name in names if name in allowed]
            os.environ["BPCORE_LOAD_PLUGINS"] = ",".join(names)
            plugins.reset()


def _entry_points() -> list[Any]:
    import importlib_metadata

    from bpcore.plugins.manager import ENTRY_POINT_GROUP

    return list(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bpcore`` command; return its exit status (0, 1 failure, 2 usage error, 130 Ctrl-C).

    Every failure is one line on stderr, never a traceback (set ``BPCORE_DEBUG=1`` to see one).
    """
    signalled = [False]
    previous = None

    def on_sigint(signum: int, frame: Any) -> None:
        signalled[0] = True
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: keep Python's handler
        previous = None
    try:
        return _main(argv, signalled)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main(argv: Sequence[str] | None, signalled: list[bool]) -> int:
    debug = os.environ.get("BPCORE_DEBUG", "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    try:
        if args.handler in (_list_models, _plugins):
            code = _listing(args.handler, args, signalled)
        else:
            code = int(args.handler(args))
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        _say(
            "interrupted" if signalled[0] else "error: interrupted by a plugin (it raised KeyboardInterrupt)"
        )
        return EXIT_INTERRUPTED
    except USAGE_ERRORS as error:
        if debug:
            raise
        _say(f"error: {error}")
        return EXIT_USAGE
    except BpcoreError as error:
        if debug:
            raise
        _say(f"error: {error}")
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader stopped reading (`bpcore run ... | head`): as for `ls | head`, nothing to say.
        _silence_stdout()
        return EXIT_FAILURE
    except OSError as error:
        if debug:
            raise
        # Most often stdout: a full disk (ENOSPC) or a closed pipe.
        _silence_stdout()
        _say(f"error: {error.strerror or error}" + (f": {error.filename}" if error.filename else ""))
        return EXIT_FAILURE
    except SystemExit as error:
        if debug:
            raise
        _say(f"error: something (a plugin?) called sys.exit({error.code!r}) while bpcore ran {args.command}")
        return EXIT_FAILURE
    except Exception as error:
        if debug:
            raise
        _say(
            f"error: unexpected {type(error).__name__}: {error} "
            "(a bug in bpcore or a plugin; BPCORE_DEBUG=1 shows the traceback)"
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
