"""Fixtures for the bp-effnet tests: tiny random-weights EfficientNets (see tiny_effnet.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helper module is imported by bare name (also by the lead's conformance file).
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One thread: on a small shared machine, two OpenMP threads contending with other processes
    ran training steps 10-20x slower than one (measured: 17 ms against 160-340 ms an image)."""


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
