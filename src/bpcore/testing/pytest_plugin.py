"""Fixtures every bpcore plugin's tests want, as a pytest plugin (loaded through the ``pytest11`` entry point).

- ``bpcore_home``: models saved by name go to a temporary folder (``$BPCORE_HOME``).
- ``one_torch_thread``: torch runs on one thread for the test (tiny models on a small, shared
  machine run faster so), then gets its thread count back.
- ``run_python``: run a snippet in a fresh interpreter, for what one process cannot undo
  (imports, environment variables).
- ``register_models``: register model specs at run time for one test (``register_models(name=...,
  factory=..., tasks=[...])``), unregistered afterwards.

Example (a plugin's ``tests/conftest.py``)::

    import pytest

    @pytest.fixture(autouse=True)
    def isolated(bpcore_home, one_torch_thread):
        '''Every test of this plugin saves into a temporary home, on one thread.'''
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def bpcore_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Models saved by name go to a temporary folder."""
    home = tmp_path / "bpcore-home"
    monkeypatch.setenv("BPCORE_HOME", str(home))
    return home


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test; the rest of the session keeps its own count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a Python snippet in a fresh interpreter: ``run_python(code, **environment)``."""

    def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


@pytest.fixture
def register_models() -> Iterator[Callable[..., str]]:
    """Register a model spec at run time (``register_models(name=..., factory=..., ...)``) for one test."""
    import bpcore

    registered: list[str] = []

    def add(**spec: Any) -> str:
        class Plugin:
            @bpcore.hookimpl
            def register_models(self, register: Any) -> None:
                register(**spec)

        name = bpcore.register_plugin(Plugin(), name=f"test-plugin-{spec['name']}")
        registered.append(name)
        return name

    try:
        yield add
    finally:
        for name in registered:
            bpcore.unregister_plugin(name)
