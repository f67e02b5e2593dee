"""Fixtures for the bp-hf tests: tiny transformers models saved to folders once per session.

Tests that finetune a model copy its folder first (``fresh_*`` fixtures), so the session's
folders never change. ``tiny_hf`` is importable by bare name (the lead's conformance kit uses it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from tiny_hf import tiny_gpt2_folder, tiny_nli_folder, tiny_t5_folder  # noqa: E402

import bpcore  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models spend most of their time waiting for a second thread: one runs them faster.

    Only for bp-hf's tests: the rest of the session keeps its threads.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def t5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_t5_folder(tmp_path_factory.mktemp("t5"))


@pytest.fixture(scope="session")
def short_t5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5 whose tokenizer allows only 48 input tokens, for long-context QA."""
    return tiny_t5_folder(tmp_path_factory.mktemp("t5-short"), model_max_length=48)


@pytest.fixture(scope="session")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gpt2_folder(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="session")
def nli_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_nli_folder(tmp_path_factory.mktemp("nli"))


@pytest.fixture
def copy_folder(tmp_path: Path) -> Callable[[Path], Path]:
    """A private copy of a session folder, for a test that changes the model."""

    def copy(folder: Path) -> Path:
        target = tmp_path / f"copy-{folder.name}"
        shutil.copytree(folder, target)
        return target

    return copy


@pytest.fixture(autouse=True)
def bpcore_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "bpcore-home"
    monkeypatch.setenv("BPCORE_HOME", str(home))
    return home


@pytest.fixture
def test_plugin() -> Iterator[Callable[..., str]]:
    """Register model specs at run time (``add(name=..., factory=..., ...)``); removed afterwards."""
    registered: list[str] = []

    def add(**spec: object) -> str:
        class Plugin:
            @bpcore.hookimpl
            def register_models(self, register):
                register(**spec)

        name = bpcore.register_plugin(Plugin(), name=f"bp-hf-test-{spec['name']}")
        registered.append(name)
        return name

    try:
        yield add
    finally:
        for name in registered:
            bpcore.unregister_plugin(name)


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a Python snippet in a fresh interpreter (for what one process cannot undo: imports, env)."""

    def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run
