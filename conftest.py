"""How the whole suite shares this machine: ``nox -s tests`` runs it on two pytest-xdist workers.

Each test file runs whole on one worker, so the fixtures a file builds once (a server, a
Ray instance, a built site, tiny models) are built once; files that start Ray share one group,
so no two Ray instances run at once. A worker runs torch on one thread: two workers already
keep both cores busy, and more threads than cores slow every test down.
"""

from __future__ import annotations

import os

import pytest

#: Test files that start a local Ray instance: they run one after another, on one worker.
RAY_FILES = ("test_serve_ray.py", "test_ray_data.py")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = "ray" if item.path.name in RAY_FILES else str(item.path)
            item.add_marker(pytest.mark.xdist_group(group))
