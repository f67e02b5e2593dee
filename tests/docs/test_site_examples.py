"""Every example on the site runs, and prints what the page shows.

Each page's blocks run in order (:mod:`site_pages` says how each kind of block is read) in a
fresh working folder, with the tasks' defaults swapped for tiny local models through
registration and ``BPCORE_DEFAULTS`` (``conftest.py``); the examples themselves run unchanged.
Image files an example names are made there first (small images, one colour per name stem). A
page that starts a server (``bpcore serve``) gets one on a free port, and ``$BPCORE_URL`` names it.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import re
import shlex
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from site_pages import DOCS, NOT_RUN, PAGES, ROOT, Block, bash_commands, blocks, compare, like_shown, runnable

import bpcore
from bpcore.plugins import manager as plugins

# Expected, and said on the pages: the few-example finetunes hold nothing out to validate on, and
# finetuning text classification's zero-shot default starts from a finetunable model.
pytestmark = [
    pytest.mark.filterwarnings("ignore:the validation split:bpcore.training.history.BpcoreWarning"),
    pytest.mark.filterwarnings(
        "ignore:.*cannot be finetuned. finetuning:bpcore.training.history.BpcoreWarning"
    ),
]

RUNNABLE = [page for page in PAGES if runnable(page)]
IMAGE = re.compile(r"\b([\w/-]+\.(?:png|jpg))\b")


def page_id(page: Path) -> str:
    return str(page.relative_to(DOCS if DOCS in page.parents else ROOT))


def make_images(page: Path, folder: Path) -> None:
    """A small image for every image file the page's blocks name (not the page's own figures)."""
    from tiny_clip import COLOURS, make_image

    colours = sorted(COLOURS)
    names = {name for block in blocks(page) for name in IMAGE.findall(block.body)}
    for index, name in enumerate(sorted(names)):
        if name.startswith("img/"):
            continue
        stem = re.sub(r"\d+$", "", Path(name).stem)  # beagle1, beagle2: one colour per breed
        colour = colours[zlib.crc32(stem.encode()) % len(colours)]
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        make_image(colour, ("solid", "stripes", "checks")[index % 3], seed=index).convert("RGB").save(path)


class Printed:
    """A ``print`` for the examples' namespace that also keeps each call's text."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(
        self, *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, **kw: Any
    ) -> None:
        if file is None:
            self.calls.append((" " if sep is None else sep).join(map(str, args)))
        builtins.print(*args, sep=sep, end=end, file=file, **kw)


class PageRun:
    """One page's blocks, run in order in one namespace."""

    def __init__(self, page: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.page = page
        self.folder = folder
        self.monkeypatch = monkeypatch
        self.namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
        self.server: str | None = None
        self.stack = contextlib.ExitStack()

    def where(self, block: Block) -> str:
        return f"{page_id(self.page)}, the block at line {block.line}"

    def run(self) -> int:
        """Run every block; return how many code blocks ran."""
        found = blocks(self.page)
        ran = 0
        with self.stack:
            for index, block in enumerate(found):
                following = found[index + 1] if index + 1 < len(found) else None
                output = following if following is not None and following.is_output else None
                if block.needs_a_cluster:
                    continue
                if block.is_file:
                    (self.folder / block.title).write_text(block.body, encoding="utf-8")
                elif block.language == "python":
                    self.python(block, output)
                    ran += 1
                elif block.language == "bash":
                    self.bash(block, output)
                    ran += 1
        return ran

    def python(self, block: Block, output: Block | None) -> None:
        printed = Printed()
        self.namespace["print"] = printed
        exec(compile(block.body, self.where(block), "exec"), self.namespace)
        if output is not None:
            compare(printed.calls, output, self.where(block))

    def bash(self, block: Block, output: Block | None) -> None:
        from bpcore.cli import main

        printed = []
        for command in bash_commands(block.body):
            if command.startswith(NOT_RUN):
                continue
            words = shlex.split(command)
            if words[0] == "export":
                for setting in words[1:]:
                    key, _, value = setting.partition("=")
                    self.monkeypatch.setenv(
                        key, self.server if key == "BPCORE_URL" and self.server else value
                    )
                continue
            assert words[0] == "bpcore", f"{self.where(block)}: a command the test cannot run: {command}"
            if words[1] == "serve":
                self.serve(words[2:])
                continue
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                status = main(words[1:])
            assert status == 0, f"{self.where(block)}: `{command}` exited {status}"
            if stdout.getvalue().strip():
                printed.append(stdout.getvalue().strip())
        if output is not None:
            compare(printed, output, self.where(block))

    def serve(self, arguments: list[str]) -> None:
        """``bpcore serve``: the same server (its keys; models load on first use), on a free port."""
        from serve_helpers import running_server

        keys = [arguments[index + 1] for index, word in enumerate(arguments) if word == "--api-key"]
        self.server = self.stack.enter_context(running_server(api_keys=keys))


@pytest.fixture
def page_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    yield folder


def test_the_site_has_examples_to_run():
    names = {page_id(page) for page in RUNNABLE}
    assert {"index.md", "getting-started.md", "finetuning.md", "saving.md", "deployment.md"} <= names
    assert len([name for name in names if name.startswith("tasks/")]) == 9


@pytest.mark.parametrize("page", RUNNABLE, ids=page_id)
def test_page_examples_run(page, tiny_defaults, page_folder, monkeypatch):
    make_images(page, page_folder)
    assert PageRun(page, page_folder, monkeypatch).run() > 0


class TinyEfficientNet:
    """``efficientnet-b0`` with random weights at 32 px, in place of timm's download (the README's
    bp-effnet example): a run-time plugin, so the effnet entry point is left out to let it win."""

    @bpcore.hookimpl
    def register_models(self, register: Any) -> None:
        register(
            name="efficientnet-b0",
            factory="bp_effnet.model:EfficientNet",
            tasks=["image-classification"],
            finetunable=["image-classification"],
            init_kwargs={"model_path": "efficientnet-b0", "pretrained": False, "image_size": 32},
        )


@pytest.fixture
def readme_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", "st,clip")
    plugins.reset()
    name = bpcore.register_plugin(TinyEfficientNet(), name="docs-tiny-effnet")
    try:
        yield
    finally:
        bpcore.unregister_plugin(name)


def test_readme_links_point_into_the_site():
    """Each relative link of the README names a file of the repository; most go to the site's pages."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [target.split("#")[0] for target in re.findall(r"\]\(([^)]+)\)", text) if "://" not in target]
    assert all((ROOT / link).exists() for link in links), [
        link for link in links if not (ROOT / link).exists()
    ]
    pages = {link for link in links if link.startswith("docs/") and link.endswith(".md")}
    assert len(pages) >= 10, pages


def test_readme_examples_run(readme_plugins, tiny_defaults, page_folder, monkeypatch):
    """The README's blocks run as a page's do, against the same tiny models."""
    readme = ROOT / "README.md"
    make_images(readme, page_folder)
    assert PageRun(readme, page_folder, monkeypatch).run() >= 5


def test_output_blocks_follow_code():
    """An output block shows what the block right before it prints."""
    for page in PAGES:
        found = blocks(page)
        for index, block in enumerate(found):
            if block.is_output:
                assert index > 0 and found[index - 1].language in ("python", "bash"), (page, block.line)


def test_like_shown_compares_shapes():
    like_shown("{'dog': 0.7, 'cat': 0.3}", "{'dog': 0.99, 'cat': 0.01}")
    like_shown("anything at all", "London")
    like_shown("[0.1, 0.2]", "[0.0123, -0.0456]")
    like_shown("True", "True")
    for got, shown in [
        ("{'dog': 1.0}", "{'dog': 0.99, 'cat': 0.01}"),
        ("{'dog': 0.5, 'owl': 0.5}", "{'dog': 0.99, 'cat': 0.01}"),
        ("[0.1]", "[0.0123, -0.0456]"),
        ("False", "True"),
        ("London", "0.84"),
    ]:
        with pytest.raises(AssertionError):
            like_shown(got, shown)
