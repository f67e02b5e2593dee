"""MkDocs hook: the parts of the site written from the code at build time, so they cannot drift.

A page asks for one with a marker on a line of its own, ``<!-- bpcore:NAME -->`` or
``<!-- bpcore:NAME ARGUMENT -->``:

- ``cli``: the command line reference, from ``bpcore.cli.build_parser()``;
- ``finetune-options``: every finetuning option with its default (``bpcore.training.options``);
- ``models TASK``: the first-party models registered for a task, its default marked;
- ``variants TASK``: a task's finetuning variants and their params keys (from its contract, as
  ``bpcore.contracts.tables`` renders the protocol's tables), and ``finetune``'s own options;
- ``metrics TASK``: what ``task.evaluate`` reports for each variant (``bpcore.evaluation.metrics_for``).

An unknown marker fails the build. The hook also draws ``img/history.png`` with
:func:`bpcore.plot_history` from a real (tiny) finetune, and turns the Sphinx roles of
docstrings (``:class:`X```) into plain code in the API reference.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import tempfile
from pathlib import Path
from typing import Any

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
        description = (sub.description or helps.get(name) or "").strip()
        if issubclass(sub.formatter_class, argparse.RawDescriptionHelpFormatter):
            # Laid out by hand (examples, indented lines): shown as the command prints it.
            first, _, rest = description.partition("\n\n")
            description = first + (f"\n\n```text\n{rest.strip()}\n```" if rest.strip() else "")
        parts += [f"## `bpcore {name}`", "", description, ""]
        parts += [f"```text\n{sub.format_usage().strip()}\n```", ""]
        arguments = [
            _argument(action) for action in sub._actions if not isinstance(action, argparse._HelpAction)
        ]
        if any(default for _, _, default in arguments):
            rows = ["| argument | what it is | default |", "|---|---|---|"]
            rows += [f"| {shown} | {text} | {default} |" for shown, text, default in arguments]
        else:  # every default is in the help text already
            rows = ["| argument | what it is |", "|---|---|"]
            rows += [f"| {shown} | {text} |" for shown, text, _ in arguments]
        parts += [*rows, ""]
        if sub.epilog:
            parts += [f"```text\n{sub.epilog.strip()}\n```", ""]
    return "\n".join(parts)


def _argument(action: argparse.Action) -> tuple[str, str, str]:
    """An argument's name (with its value's name), what it is, and its default if the help omits it."""
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
    return shown, text.strip(), shown_default


def finetune_options() -> str:
    from bpcore.training.options import options_markdown

    return options_markdown().rstrip("\n")


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
    options = ", ".join(f"`{name}={default!r}`" for name, default in contract.finetune_options.items())
    if options:
        rows += [
            "",
            f"`finetune`'s own options: {options}; every other option is the loop's ([Finetuning](../finetuning.md#options)).",
        ]
    return "\n".join(rows)


def metrics_table(task: str) -> str:
    """What ``evaluate`` reports for each of ``task``'s variants: name, meaning, the function computing it."""
    from bpcore.contracts import CONTRACTS
    from bpcore.evaluation import metrics_for

    contract = CONTRACTS[task]
    rows = ["| `variant` | metric | what it measures | computed by |", "|---|---|---|---|"]
    for variant in contract.variants:
        name = f"`{variant.name}`" if len(contract.variants) > 1 else "(one variant)"
        for metric in metrics_for(task, variant.name):
            rows.append(f"| {name} | `{metric.name}` | {metric.meaning} | `{metric.computed_by}` |")
            name = ""
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
    "models": models_table,
    "variants": variants_table,
    "metrics": metrics_table,
}


# -- the history plot ------------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, HISTORY_PNG, content=history_png()))
    return files


#: The run the plot shows: topic classification with the tutorial plugin's trigram model (a real
#: finetune through the one loop, small enough to run in every build): texts of three words of a topic.
TOPICS = {
    "politics": ["senate", "vote", "election", "minister", "parliament", "law", "party"],
    "science": ["telescope", "galaxy", "cells", "physics", "experiment", "molecule", "lab"],
    "sport": ["match", "goal", "team", "coach", "league", "striker", "cup"],
}


@functools.lru_cache(maxsize=1)
def history_png() -> bytes:
    import random

    import bpcore
    from bpcore.plugins import manager

    before = os.environ.get("BPCORE_LOAD_PLUGINS")
    os.environ["BPCORE_LOAD_PLUGINS"] = "trigram"
    manager.reset()
    try:
        rng = random.Random(0)
        texts, labels = [], []
        for label, words in TOPICS.items():
            for _ in range(12):
                texts.append(" ".join(rng.sample(words, 3)))
                labels.append(label)
        tc = bpcore.TextClassification("trigram-text")
        history = tc.finetune(
            {"texts": texts, "labels": labels},
            validation_split=0.25,
            epochs=10,
            early_stopping_epochs=3,
            batch_size=8,
            learning_rate=0.01,
            seed=0,
            progress=False,
            metrics=True,
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
