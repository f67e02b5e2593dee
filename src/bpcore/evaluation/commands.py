"""``bpcore evaluate``: score a model on a data file, as ``task.evaluate`` does, and print a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bpcore import cli_arguments
from bpcore.tasknames import TASKS


def add_commands(commands: Any) -> None:
    """Add ``evaluate`` to the ``bpcore`` command's sub-parsers."""
    evaluate = commands.add_parser(
        "evaluate",
        help="score a model on a data file and print its metrics (needs bpcore[evaluate])",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Score a task's model on a data file and print its metrics as a table (or JSON).\n\n"
            "The file is what `bpcore finetune` reads: JSON Lines, CSV or JSON rows keyed by the\n"
            "task's finetuning params keys. Use examples the model was not finetuned on."
        ),
        epilog="example:\n  bpcore evaluate text-classification --model my-classifier --data test.jsonl",
    )
    evaluate.add_argument("task", choices=TASKS)
    cli_arguments.add_data(evaluate)
    cli_arguments.add_model(evaluate)
    evaluate.add_argument(
        "--variant", help="the finetuning variant whose metrics to compute (default: the one the columns fit)"
    )
    evaluate.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="multi-label: the probability a label needs (default 0.5)",
    )
    cli_arguments.add_device(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print JSON, not a table")
    evaluate.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from bpcore.datafiles import choose_variant, locate, read_params
    from bpcore.errors import InputError
    from bpcore.evaluation.definitions import kind_of
    from bpcore.evaluation.evaluate import check_threshold, require
    from bpcore.tasks import TASK_CLASSES

    task_class = TASK_CLASSES[args.task]
    check_threshold(args.threshold)
    params = read_params(args.data, task=task_class)
    variant = choose_variant(task_class, params, args.variant)
    try:  # a bad row, or a missing package, is reported before the model takes its time to load
        task_class.check_params(params, variant)
        require(kind_of(args.task, variant))
        metrics = task_class(args.model, device=args.device).evaluate(
            params, variant, threshold=args.threshold
        )
    except InputError as error:
        raise locate(error, params) from None
    print(json.dumps(metrics.as_dict(), ensure_ascii=False) if args.json else metrics)
    return 0
