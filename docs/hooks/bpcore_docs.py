"""MkDocs hook: the parts of the site written from the code at build time, so they cannot drift.

A page asks for one with a marker on a line of its own, ``<!-- bpcore:NAME -->`` or
``<!-- bpcore:NAME ARGUMENT -->``:

- ``cli``: the command line reference, from ``bpcore.cli.build_parser()``;
- ``finetune-options``: every finetuning option with its default (``bpcore.training.options``);
- ``contract-calls``, ``contract-finetuning``: the protocol's tables (``bpcore.contracts.tables``);
- ``models TASK``: the first-party models registered for a task, its default marked;
- ``variants TASK``: a task's finetuning variants, their params keys, and ``finetune``'s own options.

An unknown marker fails the build. The hook also draws ``img/history.png`` with
:func:`bpcore.plot_history` from a real (tiny) finetune, and turns the Sphinx roles of
docstrings (``:class:`X```) into plain code in the API reference.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.bpcore_docs")

#: The plugins whose models the site lists: this repository's four, not whatever else is installed.
FIRST_PARTY = "st,hf,clip,effnet"
MARKER = re.compile(r"^<!-- bpcore:([\w-]+)(?: ([\w-]+))? -->$", re.MULTILINE)
HISTORY_PNG = "img/history.png"


def on_startup(command: str, dirty: bool) -> None:
    # Nothing the build does may reach a model hub; listings show only first-party models.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # argparse wraps usage lines at the terminal's width: fix it, so builds agree.
    os.environ["COLUMNS"] = "100"


# -- markers -----------------------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        name, argument = match.group(1), match.group(2)
        make = GENERATORS.get(name)
        if make is None:
            raise ValueError(f"{page.file.src_uri}: unknown marker bpcore:{name}")
        return make(argument) if argument else make()

    return MARKER.sub(replace, markdown)


def cli_reference() -> str:
    """One section per sub-command: its usage, description and a table of its arguments."""
    from bpcore.cli import build_parser

    parser = build_parser()
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    parts = [f"```text\n{parser.format_usage().strip()}\n```", ""]
    for name, sub in commands.choices.items():
        parts += [f"## `bpcore {name}`", "", (sub.description or helps.get(name) or "").strip(), ""]
        parts += [f"```text\n{sub.format_usage().strip()}\n```", ""]
        rows = ["| argument | what it is | default |", "|---|---|---|"]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            rows.append(_argument_row(action))
        parts += [*rows, ""]
    return "\n".join(parts)


def _argument_row(action: argparse.Action) -> str:
    if action.option_strings:
        shown = ", ".join(f"`{option}`" for option in action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or action.dest.upper()
            shown += f" `{metavar}`" + (" ..." if action.nargs in ("+", "*") else "")
    else:
        shown = f"`{action.metavar or action.dest}`" + (" ..." if action.nargs in ("+", "*") else "")
    text = (action.help or "").replace("|", "\\|")
    if action.choices:
        text += " (one of " + ", ".join(f"`{choice}`" for choice in action.choices) + ")"
    if action.required and action.option_strings:
        text += " (required)"
    default = action.default
    if default in (None, False, [], argparse.SUPPRESS) or "(default" in text:
        shown_default = ""
    else:
        shown_default = f"`{default}`"
    return f"| {shown} | {text} | {shown_default} |"


def finetune_options() -> str:
    from bpcore.training.options import options_markdown

    return options_markdown().rstrip("\n")


def contract_table(name: str) -> Any:
    def make() -> str:
        from bpcore.contracts import tables

        return tables.TABLES[name]()

    return make


@functools.lru_cache(maxsize=1)
def _registry() -> Any:
    before = {key: os.environ.get(key) for key in ("BPCORE_LOAD_PLUGINS", "BPCORE_DEFAULTS")}
    os.environ["BPCORE_LOAD_PLUGINS"] = FIRST_PARTY
    os.environ.pop("BPCORE_DEFAULTS", None)
    try:
        from bpcore.plugins import manager
        from bpcore.plugins.registry import get_registry

        manager.reset()
        registry = get_registry()
        defaults = {}
        from bpcore import TASKS

        for task in TASKS:
            defaults[task] = registry.default_for(task).name
        return registry, defaults
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def models_table(task: str) -> str:
    """The first-party models registered for ``task``: name, plugin, finetunable, aliases, description."""
    from bpcore.plugins.registry import check_task

    check_task(task)
    registry, defaults = _registry()
    rows = ["| model | plugin | finetunable | aliases | description |", "|---|---|---|---|---|"]
    for spec in registry.list_models(task):
        name = f"`{spec.name}`" + (" (default)" if defaults[task] == spec.name else "")
        aliases = ", ".join(f"`{alias}`" for alias in registry.aliases_of(spec, task))
        finetunable = "yes" if task in spec.finetunable else "no"
        description = spec.description.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {name} | `bp-{spec.plugin}` | {finetunable} | {aliases} | {description} |")
    return "\n".join(rows)


def variants_table(task: str) -> str:
    """A task's finetuning variants (the default first) with their params keys, and ``finetune``'s options."""
    from bpcore.contracts import CONTRACTS
    from bpcore.contracts.tables import _params

    contract = CONTRACTS[task]
    rows = ["| `variant` | `params` keys | loss |", "|---|---|---|"]
    for index, variant in enumerate(contract.variants):
        name = f"`{variant.name}`" + (" (default)" if index == 0 else "")
        if len(contract.variants) == 1:
            name = "(one variant)"
        rows.append(f"| {name} | {_params(variant.params)} | {_loss(variant.loss)} |")
    options = ", ".join(
        f"`{name}={default!r}`" for name, default in contract.finetune_options.items()
    )
    if options:
        rows += ["", f"`finetune`'s own options: {options}; every other option is the loop's ([Finetuning](../finetuning.md#options))."]
    return "\n".join(rows)


def _loss(loss: str) -> str:
    return {
        "model": "the model's own",
        "model_or_cross_entropy": "the model's own, or cross-entropy over its logits",
        "cross_entropy": "cross-entropy",
        "binary_cross_entropy": "binary cross-entropy per label",
        "cosine_similarity": "cosine similarity against the scores",
        "triplet": "triplet (semi-hard mining)",
    }.get(loss, loss)


GENERATORS: dict[str, Any] = {
    "cli": cli_reference,
    "finetune-options": finetune_options,
    "contract-calls": contract_table("calls"),
    "contract-finetuning": contract_table("finetuning"),
    "models": models_table,
    "variants": variants_table,
}


# -- the history plot ------------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, HISTORY_PNG, content=history_png()))
    return files


#: The run the plot shows: topic classification with the tutorial plugin's trigram model
#: (a real finetune through the one loop, small enough to run in every build).
TOPICS = {
    "politics": ["The senate passed the budget", "Parliament votes on the bill", "The minister resigned",
                 "Elections are held in May", "The president signed the law", "Voters back the reform"],
    "science": ["A telescope found a new galaxy", "Cells divide by mitosis", "The probe reached Mars",
                "Physicists measured the neutrino", "A new element was named", "The vaccine trial succeeded"],
    "sport": ["The striker scored twice", "The team won the cup", "She ran the marathon in record time",
              "The match ended in a draw", "The coach was sacked", "A late goal decided the final"],
}


@functools.lru_cache(maxsize=1)
def history_png() -> bytes:
    import bpcore
    from bpcore.plugins import manager

    before = os.environ.get("BPCORE_LOAD_PLUGINS")
    os.environ["BPCORE_LOAD_PLUGINS"] = "trigram"
    manager.reset()
    try:
        tc = bpcore.TextClassification("trigram-text")
        texts = [text for texts in TOPICS.values() for text in texts]
        labels = [label for label, texts in TOPICS.items() for _ in texts]
        history = tc.finetune(
            {"texts": texts, "labels": labels}, epochs=12, early_stopping_epochs=3, seed=0,
            progress=False, learning_rate=0.02, batch_size=6,
        )
        with tempfile.TemporaryDirectory() as folder:
            path = bpcore.plot_history(history, Path(folder) / "history.png")
            return path.read_bytes()
    finally:
        if before is None:
            os.environ.pop("BPCORE_LOAD_PLUGINS", None)
        else:
            os.environ["BPCORE_LOAD_PLUGINS"] = before
        manager.reset()


# -- the API reference -------------------------------------------------------------------------------

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):(?=<code>|<a )")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Docstrings are written with Sphinx roles (``:class:`X```): show them as plain code."""
    if page.file.src_uri.startswith("reference/"):
        html = ROLE.sub("", html)
        html = html.replace("::</p>", ":</p>")
    return html

