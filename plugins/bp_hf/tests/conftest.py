"""Fixtures for the bp-hf tests: tiny transformers models saved to folders once per session.

Tests that finetune a model copy its folder first (``fresh_*`` fixtures), so the session's
folders never change. ``tiny_hf`` is importable by bare name (the lead's conformance kit uses it).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_hf import tiny_gpt2_folder, tiny_nli_folder, tiny_t5_folder  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(one_torch_thread: None, bpcore_home: Path) -> None:
    """Tiny models spend most of their time waiting for a second thread: one runs them faster.
    Models saved by name go to a temporary home."""


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
