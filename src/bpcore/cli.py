"""The ``bpcore`` command: list models and plugins, run a task.

``list-models`` and ``plugins`` import no torch and no model library.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from bpcore.errors import (
    BpcoreError,
    InputError,
    ModelNotFoundError,
    TaskNotSupportedError,
)
from bpcore.tasknames import TASKS

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
    from bpcore.registry import get_registry

    if args.limit is not None and args.limit < 0:
        raise InputError(f"must be 0 or more, got {args.limit}", field="--limit")
    rows = list_model_rows(task=args.task, limit=args.limit, pattern=args.pattern)
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
        if args.pattern:
            anything = bool(list_model_rows(task=args.task))
            print(
                f"no model name matches {args.pattern!r}"
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
    from bpcore.plugins import plugin_infos
    from bpcore.registry import get_registry

    registry = get_registry()
    counts: dict[str, int] = {}
    for spec in registry.specs.values():
        counts[spec.plugin or "?"] = counts.get(spec.plugin or "?", 0) + 1
    rows = []
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
    kwargs: dict[str, Any] = dict(args.set or [])
    parameters = list(inspect.signature(task_class.__call__).parameters)[1:]
    # The items come from the positional inputs (and --context, --text); --set sets the rest.
    items = {"text", "image", "question", "context"}
    if "return_tensor" in kwargs:
        raise InputError(
            "the command line prints JSON, so it cannot return a tensor", field="--set return_tensor"
        )
    for key in kwargs:
        if key in items:
            option = {"context": "--context", "text": "--text"}.get(key, "the positional inputs")
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
    if args.task == "qa" and args.context is None:
        raise InputError("is required for qa", field="--context")
    if args.task == IMAGE_TEXT and args.text is None:
        raise InputError("is required for image-text-vectorisation, one per image", field="--text")
    inputs: Any = args.inputs[0] if len(args.inputs) == 1 else list(args.inputs)
    task = task_class(args.model, device=args.device)
    if args.task == "qa":
        output = task(inputs, args.context, **kwargs)
    elif args.task == "image-text-vectorisation":
        output = task(inputs, args.text[0] if len(args.text) == 1 else args.text, **kwargs)
    else:
        output = task(inputs, **kwargs)
    _print_json(output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bpcore", description="Use and finetune state-of-the-art models.")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list-models", help="list the registered models")
    listing.add_argument("--task", choices=TASKS, help="only models for this task")
    listing.add_argument("--pattern", help="only names matching this pattern, e.g. 'gpt2*'")
    listing.add_argument("--limit", type=int, help="at most this many models")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("-v", "--verbose", action="store_true", help="print descriptions too")
    listing.set_defaults(handler=_list_models)

    plugins = commands.add_parser("plugins", help="list installed plugins and any that failed to load")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=_plugins)

    run = commands.add_parser(
        "run",
        help="run a task and print its JSON output",
        description="Run a task on one or more inputs (texts, questions or image paths) and print JSON.",
    )
    run.add_argument("task", choices=TASKS)
    run.add_argument("inputs", nargs="+", help="texts, questions (qa) or image paths (image tasks)")
    run.add_argument("--model", help="model name, alias or saved path (default: the task's default)")
    run.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
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
    return parser


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
    from bpcore import plugins

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

    from bpcore.plugins import ENTRY_POINT_GROUP

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
