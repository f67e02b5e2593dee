"""The plugin author's guide cannot go stale: its quoted files match the example plugin, its examples run."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from bpcore.plugins import manager as plugins

ROOT = Path(__file__).resolve().parents[1]
GUIDE = sorted((ROOT / "docs" / "plugins").glob("*.md"))
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(page: Path) -> list[tuple[str, str]]:
    return [(language, body) for language, body in FENCE.findall(page.read_text())]


def quoted_file(body: str) -> Path | None:
    """The repository file a block quotes, named on its first line (``# examples/...``)."""
    first = body.splitlines()[0] if body.strip() else ""
    match = re.fullmatch(r"# ((?:examples|src|plugins)/\S+)", first)
    return ROOT / match.group(1) if match else None


def quotes(page: Path) -> list[tuple[Path, str]]:
    """The repository files a page quotes, with the quoted text."""
    found = []
    for _, body in blocks(page):
        path = quoted_file(body)
        if path is not None:
            found.append((path, body.split("\n", 1)[1].rstrip("\n")))
    return found


def examples(page: Path) -> list[str]:
    """The page's Python examples (blocks that quote no file)."""
    return [body for language, body in blocks(page) if language == "python" and quoted_file(body) is None]


# Only pages with something to check are parametrised: a test that finds nothing cannot fail.
QUOTING = [page for page in GUIDE if quotes(page)]
RUNNABLE = [page for page in GUIDE if examples(page)]


def test_the_guide_has_quotes_and_examples_to_check():
    assert {page.name for page in GUIDE} >= {"protocol.md", "testing.md", "tutorial.md", "hooks.md"}
    assert QUOTING and RUNNABLE


@pytest.mark.parametrize("page", QUOTING, ids=lambda page: page.name)
def test_quoted_files_match_the_example_plugin(page):
    for path, quoted in quotes(page):
        assert path.is_file(), f"{page.name} quotes {path}, which does not exist"
        assert quoted in path.read_text(), f"{page.name}: the quote of {path.name} differs from the file"


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda page: page.name)
def test_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", "trigram")
    monkeypatch.chdir(tmp_path)
    plugins.reset()
    # A page's examples run as one importable module, as a test file would: a class they define
    # can be saved and loaded back by its "module:Class" path.
    module = types.ModuleType(f"docs_{page.stem}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for body in examples(page):
        exec(compile(body, f"{page.name} example", "exec"), module.__dict__)


def test_the_guide_covers_every_task():
    protocol = (ROOT / "docs" / "plugins" / "protocol.md").read_text()
    from bpcore import TASKS

    for task in TASKS:
        assert f"`{task}`" in protocol, task


def test_the_base_model_docstring_example_runs():
    import textwrap

    from bpcore.models import BaseModel

    example = BaseModel.__doc__.split("Example::", 1)[1]
    namespace: dict[str, object] = {"BaseModel": BaseModel, "bpcore": __import__("bpcore")}
    exec(textwrap.dedent(example), namespace)
    assert (
        namespace["bpcore"].Emotion(namespace["Shouter"](tasks=["emotion"]))(["calm", "fine"])
        == ["anger"] * 2
    )


def test_every_hook_is_documented():
    from bpcore.plugins import hookspecs

    hooks = (ROOT / "docs" / "plugins" / "hooks.md").read_text()
    for name in dir(hookspecs):
        if name.startswith("register_"):
            assert f"## `{name}(register)`" in hooks, name
