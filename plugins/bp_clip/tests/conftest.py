"""Fixtures for the bp-clip tests: a tiny OpenCLIP model built offline, generated images."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# The helper module tiny_clip.py sits beside this file (pytest's rootdir-based imports do not add it).
sys.path.insert(0, str(Path(__file__).parent))

from tiny_clip import build_tiny_clip, write_tiny_clip  # noqa: E402


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny config JSON and its random-weights checkpoint."""
    return write_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def shared_clip(tmp_path_factory: pytest.TempPathFactory):
    """A tiny CLIP for tests that only read from it (never finetune it)."""
    return build_tiny_clip(tmp_path_factory.mktemp("shared-clip"))


@pytest.fixture
def fresh_clip(tmp_path: Path):
    """A tiny CLIP of its own, for tests that finetune it."""
    return build_tiny_clip(tmp_path / "fresh-clip")


@pytest.fixture
def bpcore_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "bpcore-home"
    monkeypatch.setenv("BPCORE_HOME", str(home))
    return home


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
