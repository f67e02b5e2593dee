"""Fixtures for the bp-clip tests: a tiny OpenCLIP model built offline, generated images."""

from __future__ import annotations

import sys
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
