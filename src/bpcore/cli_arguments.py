"""The arguments several ``bpcore`` commands share, declared once (``run``, ``finetune``, ``evaluate``)."""

from __future__ import annotations

import argparse


def add_data(parser: argparse.ArgumentParser) -> None:
    """``--data FILE``: the examples a command reads, keyed by the task's finetuning params keys."""
    parser.add_argument(
        "--data", required=True, metavar="FILE", help="the examples: .jsonl, .ndjson, .csv or .json"
    )


def add_model(parser: argparse.ArgumentParser) -> None:
    """``--model``: a registered name, an alias or a saved model's name or path."""
    parser.add_argument("--model", help="model name, alias or saved path (default: the task's default)")


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``: where the model runs."""
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
