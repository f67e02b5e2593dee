"""Tiny EfficientNets and generated images for the bp-effnet tests (and the lead's conformance kit).

The network is a real timm ``efficientnet_b0`` with random weights, saved to a local file and
loaded back by path; images are 64 px so that a training step costs milliseconds on a CPU.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import bpcore

#: The timm architecture of the test networks, and the input size the tests run it at.
TIMM_MODEL = "tf_efficientnet_b0"
IMAGE_SIZE = 64
#: The name the test plugin registers.
REGISTERED_NAME = "tiny-effnet"

COLOURS = {"red": (200, 30, 30), "green": (30, 170, 40), "blue": (30, 50, 210)}


def effnet_weights_file(
    directory: Path, num_classes: int = 1000, seed: int = 0, suffix: str = ".safetensors"
) -> Path:
    """A random-weights timm EfficientNet-B0 written to ``directory`` (safetensors, or ``.pt``: a torch state dict)."""
    import timm
    import torch
    from safetensors.torch import save_model

    torch.manual_seed(seed)
    network = timm.create_model(TIMM_MODEL, pretrained=False, num_classes=num_classes)
    damp_residual_branches(network)
    calibrate_batch_norm(network)
    path = Path(directory) / f"{TIMM_MODEL}-{num_classes}-{seed}{suffix}"
    if suffix == ".safetensors":
        save_model(network, str(path))
    else:
        torch.save(network.state_dict(), path)
    return path


def damp_residual_branches(network: Any, scale: float = 0.1) -> None:
    """Scale down the last BatchNorm of every residual block, as zero-init-residual schemes do.

    A freshly initialised EfficientNet is chaotic: a few SGD steps at 0.01 on its body change
    its features so much that eval-mode (running-statistics) losses climb into the thousands,
    which no pretrained network does. Damped residual branches make the random body behave
    like a trained one under finetuning (measured: smooth, falling validation loss).
    """
    for block in network.modules():
        if getattr(block, "has_skip", False):
            last_norm = getattr(block, "bn3", None) or block.bn2
            last_norm.weight.data.mul_(scale)


def calibrate_batch_norm(network: Any, batches: int = 4, seed: int = 0) -> None:
    """Give the BatchNorm layers running statistics measured on generated images, as trained weights have.

    A freshly initialised network keeps mean 0 / variance 1: after a few training steps its
    eval-mode activations explode (validation losses of 1e34, then NaN), a state no pretrained
    network is in.
    """
    import torch
    from timm.data import create_transform, resolve_model_data_config

    transform = create_transform(
        **resolve_model_data_config(network, args={"input_size": (3, IMAGE_SIZE, IMAGE_SIZE)})
    )
    norms = [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the calibration batches
    rng = random.Random(seed)
    network.train()
    with torch.no_grad():
        for _ in range(batches):
            images = [
                coloured_image(rng.choice(list(COLOURS)), rng, striped=rng.random() < 0.5) for _ in range(32)
            ]
            network(torch.stack([transform(image) for image in images]))
    for norm in norms:
        norm.momentum = 0.1
    network.eval()


def build_tiny_effnet(directory: Path, **options: Any) -> Any:
    """An :class:`~bp_effnet.EfficientNet` over a random-weights file in ``directory``, at 64 px."""
    from bp_effnet import EfficientNet

    options.setdefault("image_size", IMAGE_SIZE)
    return EfficientNet(TIMM_MODEL, pretrained=str(effnet_weights_file(directory)), **options)


class TinyEffnetPlugin:
    """A test plugin registering ``tiny-effnet``: the bp-effnet factory pointed at a local weights file."""

    def __init__(self, weights: Path):
        self.weights = weights

    @bpcore.hookimpl
    def register_models(self, register: Any) -> None:
        register(
            name=REGISTERED_NAME,
            factory="bp_effnet.model:EfficientNet",
            tasks=["image-classification"],
            finetunable=["image-classification"],
            description="random-weights EfficientNet-B0 for tests",
            init_kwargs={"model_path": TIMM_MODEL, "pretrained": str(self.weights), "image_size": IMAGE_SIZE},
            details={"num_parameters": 5_288_548},
        )


# -- generated images ---------------------------------------------------------------------


def _jitter(colour: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    return tuple(max(0, min(255, channel + rng.randint(-30, 30))) for channel in colour)  # type: ignore[return-value]


def coloured_image(colour: str, rng: random.Random, striped: bool = False, size: int = 72) -> Any:
    """A ``size``-px RGB image of one colour (slightly varied, with pixel noise), optionally white-striped."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), _jitter(COLOURS[colour], rng))
    draw = ImageDraw.Draw(image)
    for _ in range(size):  # noise dots, so no two images are alike
        x, y = rng.randrange(size), rng.randrange(size)
        draw.point((x, y), fill=_jitter(COLOURS[colour], rng))
    if striped:
        offset = rng.randrange(4)
        for y in range(offset, size, 8):
            draw.rectangle((0, y, size, y + 3), fill=(240, 240, 240))
    return image


def single_label_data(per_label: int, seed: int = 0) -> tuple[list[Any], list[str]]:
    """``(images, labels)``: ``per_label`` solid images each of red, green and blue, shuffled."""
    rng = random.Random(seed)
    rows = [(coloured_image(colour, rng), colour) for colour in COLOURS for _ in range(per_label)]
    rng.shuffle(rows)
    return [image for image, _ in rows], [label for _, label in rows]


def multi_label_data(per_combination: int, seed: int = 0) -> tuple[list[Any], list[list[str]]]:
    """``(images, label lists)`` over two independent labels: "red" (else blue) and "striped"."""
    rng = random.Random(seed)
    rows = []
    for red in (True, False):
        for striped in (True, False):
            labels = [name for name, on in (("red", red), ("striped", striped)) if on]
            for _ in range(per_combination):
                rows.append((coloured_image("red" if red else "blue", rng, striped=striped), labels))
    rng.shuffle(rows)
    return [image for image, _ in rows], [labels for _, labels in rows]


def write_label_folders(root: Path, per_label: int, seed: int = 0) -> Path:
    """A folder with one sub-folder of PNG images per label (red/, green/, blue/)."""
    rng = random.Random(seed)
    for colour in COLOURS:
        (root / colour).mkdir(parents=True, exist_ok=True)
        for index in range(per_label):
            coloured_image(colour, rng).save(root / colour / f"{index}.png")
    return root
