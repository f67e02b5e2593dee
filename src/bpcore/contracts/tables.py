"""The protocol guide's tables, rendered from the contracts (so the guide cannot drift from the code).

``python -m bpcore.contracts.tables docs/plugins/protocol.md`` rewrites the tables between the
``<!-- contract:NAME -->`` and ``<!-- /contract:NAME -->`` markers; a test checks they are current.
"""

from __future__ import annotations

import re
import sys
import typing
from collections.abc import Callable
from pathlib import Path

import attrs

from bpcore.contracts import CONTRACTS, TaskContract, VariantContract

PRE_FINETUNING = {
    "labels": "`labels={index: label}`",
    "num_classes": "`num_classes=n`",
    "multi_label": "`multi_label=True`",
}


def calls_table() -> str:
    """What a model's call receives and answers, per task."""
    rows = ["| task | `task_input` | keyword arguments | one answer |", "|---|---|---|---|"]
    for contract in CONTRACTS.values():
        keywords = "".join(f" `{keyword}`" for keyword in contract.keywords)
        rows.append(f"| `{contract.name}` | {contract.task_input} |{keywords} | {contract.answer_doc} |")
    return "\n".join(rows)


def finetuning_table() -> str:
    """What finetuning hands a model and expects back, per task and variant."""
    rows = [
        "| task, variant | `params` of `finetune` | `process_batch` receives | `training_step` returns "
        "| `pre_finetuning` is told | default optimizer |",
        "|---|---|---|---|---|---|",
    ]
    for contract in CONTRACTS.values():
        for variant in contract.variants:
            rows.append(_finetuning_row(contract, variant))
    return "\n".join(rows)


def _finetuning_row(contract: TaskContract, variant: VariantContract) -> str:
    told = ", ".join(PRE_FINETUNING[name] for name in variant.pre_finetuning) or "no arguments"
    label = f"`{contract.name}`" + (f", `{variant.name}`" if len(contract.variants) > 1 else "")
    return (
        f"| {label} | {_params(variant.params)} | {variant.receives} | {variant.returns} | {told} "
        f"| {contract.optimizer.describe()} |"
    )


def _params(schema: type) -> str:
    hints = typing.get_type_hints(schema)
    described = []
    for field in attrs.fields(schema):
        text = f"`{field.name}`"
        if field.default is None:
            text += " (optional)"
        elif (
            typing.get_origin(hints[field.name]) is list
            and typing.get_origin(typing.get_args(hints[field.name])[0]) is list
            and field.name == "labels"
        ):
            text += " (a list per item)"
        described.append(text)
    return ", ".join(described)


TABLES = {"calls": calls_table, "finetuning": finetuning_table}


def _replacement(table: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match.group(1) + table + match.group(2)


def render(text: str) -> str:
    """``text`` with every marked table replaced by its current rendering."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- contract:{name} -->\n).*?(\n<!-- /contract:{name} -->)", re.DOTALL)
        # A function replacement: the table's backslashes and brackets stay literal.
        text = pattern.sub(_replacement(make()), text)
    return text


if __name__ == "__main__":
    for path in map(Path, sys.argv[1:]):
        path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
