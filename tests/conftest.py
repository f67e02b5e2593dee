"""Shared fixtures of the core tests: an isolated plugin set, a test plugin with tiny models, images.

Every core test runs with no installed plugin loaded (``BPCORE_LOAD_PLUGINS=""``) and with
``BPCORE_HOME`` in a temporary folder, so neither installed plugins nor earlier saves change
what a test sees. Plugins a test registers at run time are always unregistered afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from core_helpers import TEST_PLUGIN_NAME, TinyClassesPlugin, TinyPlugin
from PIL import Image

import bpcore
from bpcore.plugins import manager as plugins


@pytest.fixture(autouse=True)
def isolated_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No installed plugin: each test sees only the plugins it registers itself."""
    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", "")
    plugins.reset()
    bpcore.register_plugin(TinyClassesPlugin(), name="tiny-classes")
    try:
        yield
    finally:
        # Loaded again lazily, with the real environment, by whoever asks next.
        plugins.reset()


@pytest.fixture(autouse=True)
def bpcore_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Models saved by name go to a temporary folder."""
    home = tmp_path / "bpcore-home"
    monkeypatch.setenv("BPCORE_HOME", str(home))
    return home


@pytest.fixture
def tiny_plugin() -> Iterator[str]:
    """Register the tiny models' plugin for one test."""
    name = bpcore.register_plugin(TinyPlugin(), name=TEST_PLUGIN_NAME)
    try:
        yield name
    finally:
        bpcore.unregister_plugin(name)


@pytest.fixture
def seeded() -> None:
    """Tiny models start from the same random weights in every run."""
    torch.manual_seed(0)


@pytest.fixture
def image_files(tmp_path: Path) -> dict[str, Path]:
    """Small PNG images of distinct colours and patterns."""
    folder = tmp_path / "images"
    folder.mkdir()
    files = {}
    for name, colour in (("red", (220, 20, 20)), ("green", (20, 200, 40)), ("blue", (30, 40, 230))):
        image = Image.new("RGB", (16, 16), colour)
        image.putpixel((3, 5), (255, 255, 255))
        path = folder / f"{name}.png"
        image.save(path)
        files[name] = path
    for name, colour in (("red2", (200, 40, 30)), ("green2", (40, 220, 20)), ("blue2", (20, 30, 200))):
        image = Image.new("RGB", (16, 16), colour)
        for x in range(0, 16, 4):
            image.putpixel((x, x), (0, 0, 0))
        path = folder / f"{name}.png"
        image.save(path)
        files[name] = path
    return files


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many malformed inputs the conformance kit's bad-input rule ran (issue #19: at least 5,000 in CI)."""
    from bpcore.testing.fuzz import FUZZ_STATS

    if FUZZ_STATS["cases"]:
        terminalreporter.write_line(
            f"bpcore fuzz: {FUZZ_STATS['cases']} malformed inputs, "
            f"{FUZZ_STATS['failures']} non-bpcore exceptions"
        )
