"""How the whole suite shares this machine: ``nox -s tests`` runs it on pytest-xdist workers.

``--dist loadfile`` keeps each test file on one worker, so the fixtures a file builds once (a
server, a Ray instance, a built site, tiny models) are built once. A worker runs torch on one
thread: the workers already keep the cores busy, and more threads than cores slow every test.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
