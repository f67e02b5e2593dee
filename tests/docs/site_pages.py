"""Reading the site's pages: their fenced blocks, in order, and what each one is for.

A page's blocks, as the tests run them:

- ```` ```python ````: run, in order, in one namespace per page;
- ```` ```bash ````: each ``bpcore`` command is run (in this process, by ``bpcore.cli.main``);
  ``export`` lines set the environment; installs, ``nox`` and launchers are not run (listed in
  :data:`NOT_RUN`);
- ```` ```json title="NAME" ```` (any language with a ``title`` that is a file name): written
  to that file before the blocks after it run;
- ```` ```python title="On a Ray cluster" ````: not run here (it needs a cluster and its storage);
  ``tests/test_ray_data.py`` runs the same calls on a local Ray instance;
- ```` ```text title="Output" ````: what the block before it prints, exactly;
  ```` ```text title="Output, for example" ````: what it prints with the default model; the
  answers of tiny models differ, so it is compared by shape (:func:`like_shown`).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: The plugin author's guide is checked by tests/test_core_docs.py (with the guide's own plugin).
PAGES = sorted(page for page in DOCS.rglob("*.md") if "plugins" not in page.relative_to(DOCS).parts)

FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
TITLE = re.compile(r'title="([^"]*)"')
EXACT, LIKE = "Output", "Output, for example"
ON_A_CLUSTER = "On a Ray cluster"
#: Shell commands a page shows that the tests do not run: installs, the repository's sessions,
#: launchers of other programs (their scripts are the pages' Python).
NOT_RUN = ("pip ", "python3 ", "accelerate ", "ACCELERATE_USE_CPU=", "torchrun ", "tensorboard ")


@dataclass
class Block:
    language: str
    title: str | None
    body: str
    line: int

    @property
    def is_output(self) -> bool:
        return self.title in (EXACT, LIKE)

    @property
    def is_file(self) -> bool:
        return self.title is not None and not self.is_output and "." in self.title

    @property
    def needs_a_cluster(self) -> bool:
        return self.title == ON_A_CLUSTER


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        title = TITLE.search(match.group(2))
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match.group(1), title.group(1) if title else None, match.group(3), line))
    return found


def runnable(page: Path) -> bool:
    return any(block.language in ("python", "bash") for block in blocks(page))


def bash_commands(body: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    commands, current = [], ""
    for raw in body.splitlines():
        line = raw.split("  #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            commands.append(current.strip())
        current = ""
    return commands


# -- comparing output ------------------------------------------------------------------------------


def parse(text: str) -> tuple[bool, Any]:
    """``(True, value)`` if ``text`` is a JSON or Python literal, else ``(False, text)``."""
    for read in (json.loads, ast.literal_eval):
        try:
            return True, read(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return False, text


def like_shown(got: str, shown: str) -> None:
    """``got`` (one printed line) has the shape of ``shown``: the same literal kind — a dict with as
    many keys, probabilities in [0, 1]; a list as long, alike item by item; a float for a float;
    equal booleans, integers and None — or any text where the page shows a text."""
    shown_is_literal, expected = parse(shown)
    if not shown_is_literal:
        return  # a text answer: a tiny model answers with some other text
    got_is_literal, value = parse(got)
    assert got_is_literal, f"expected a value like {shown!r}, got {got!r}"
    _like(value, expected, shown)


def _like(value: Any, expected: Any, shown: str) -> None:
    where = f"expected something like {shown!r}, got {value!r}"
    if isinstance(expected, bool) or expected is None:
        assert value == expected, where
    elif isinstance(expected, float):
        assert isinstance(value, (float, int)) and not isinstance(value, bool), where
    elif isinstance(expected, int):
        assert value == expected, where
    elif isinstance(expected, str):
        assert isinstance(value, str), where
    elif isinstance(expected, dict):
        assert isinstance(value, dict) and len(value) == len(expected), where
        assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in value.values()), where
        if len(expected) > 1:  # every label scored: the same labels
            assert set(value) == set(expected), where
    elif isinstance(expected, (list, tuple)):
        assert isinstance(value, (list, tuple)) and len(value) == len(expected), where
        for item, shown_item in zip(value, expected):
            _like(item, shown_item, shown)
    else:  # pragma: no cover - a new kind of shown output
        raise AssertionError(f"no rule for output shown as {shown!r}")


def compare(printed: list[str], output: Block, where: str) -> None:
    """What a block printed (one entry per print call, or per command) against the page's output block."""
    shown = output.body.rstrip("\n")
    if output.title == EXACT:
        assert "\n".join(printed) == shown, f"{where}: printed {printed!r}, the page shows {shown!r}"
        return
    lines = shown.splitlines()
    assert len(printed) == len(lines), f"{where}: printed {printed!r}, the page shows {lines!r}"
    for got, expected in zip(printed, lines):
        like_shown(got.strip(), expected.strip())
