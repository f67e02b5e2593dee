"""Fixtures for the bp-effnet tests: tiny random-weights EfficientNets (see tiny_effnet.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The helper module is imported by bare name (also by the lead's conformance file).
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One thread: on a small shared machine, two OpenMP threads contending with other processes
    ran training steps 10-20x slower than one (measured: 17 ms against 160-340 ms an image)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:  # only bp-effnet's tests: the rest of the session keeps its threads
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("effnet-weights")


@pytest.fixture(scope="session")
def weights_file(weights_dir: Path) -> Path:
    from tiny_effnet import effnet_weights_file

    return effnet_weights_file(weights_dir)


@pytest.fixture
def tiny_effnet(weights_file: Path):
    """A fresh EfficientNet-B0 with random weights (ImageNet-sized head), at 64 px."""
    from tiny_effnet import IMAGE_SIZE, TIMM_MODEL

    from bp_effnet import EfficientNet

    return EfficientNet(TIMM_MODEL, pretrained=str(weights_file), image_size=IMAGE_SIZE)


@pytest.fixture
def registered_tiny_effnet(weights_file: Path) -> Iterator[str]:
    """``tiny-effnet`` registered through a test plugin; yields its name."""
    from tiny_effnet import REGISTERED_NAME, TinyEffnetPlugin

    import bpcore

    plugin = TinyEffnetPlugin(weights_file)
    bpcore.register_plugin(plugin, name="tiny-effnet-test-plugin")
    try:
        yield REGISTERED_NAME
    finally:
        bpcore.unregister_plugin(plugin)


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
