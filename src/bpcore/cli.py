"""The ``bpcore`` command: list models and plugins, run a task.

``list-models`` and ``plugins`` import no torch and no model library.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from typing import Any

from bpcore.errors import BpcoreError, InputError
from bpcore.tasknames import TASKS


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
        if args.pattern and list_model_rows(task=args.task):
            print(f"no model name matches {args.pattern!r}" + (f" for {args.task}" if args.task else ""))
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


def _run(args: argparse.Namespace) -> int:
    from bpcore.tasks import TASK_CLASSES

    task_class = TASK_CLASSES[args.task]
    kwargs: dict[str, Any] = dict(args.set or [])
    accepted = set(inspect.signature(task_class.__call__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise InputError(
            f"{args.task} takes no option {unknown[0]!r}; it takes {sorted(accepted)}", field="--set"
        )
    if args.labels is not None:
        kwargs["labels"] = args.labels
    if args.top_k is not None:
        kwargs["top_k"] = args.top_k
    if args.task == "qa" and args.context is None:
        raise InputError("is required for qa", field="--context")
    if args.task == "image-text-vectorisation" and args.text is None:
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
    parser = argparse.ArgumentParser(prog="bpcore", description="Use and finetune state-of-the-art models.")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BpcoreError as error:
        print(f"bpcore: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
