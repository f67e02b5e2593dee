"""Tiny OpenCLIP models (random weights) and generated images, for the bp-clip tests.

Plain functions, so other test files (the conformance kit) can import them::

    from tiny_clip import build_tiny_clip, write_tiny_clip
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bpcore.plugins import hookimpl

#: A one-layer ViT (32 px images, 8 px patches: 16 tokens) and a one-layer text tower. The text
#: tower keeps open_clip's own tokenizer (its 49,408-token vocabulary), with a short context.
TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_VECTOR_SIZE = TINY_CONFIG["embed_dim"]
TINY_NAME = "tiny-clip"

# Group colours and patterns, far apart so a tiny model can tell them apart quickly.
COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220), "green": (30, 200, 40), "yellow": (230, 220, 40)}


def write_tiny_clip(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the tiny config JSON and a random-weights safetensors checkpoint; return both paths."""
    import torch
    from safetensors.torch import save_file

    from bp_clip.model import CLIP

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "tiny-clip.json"
    config_path.write_text(json.dumps(TINY_CONFIG, indent=2))
    torch.manual_seed(seed)
    model = CLIP(model_path=config_path, pretrained=None, device="cpu")
    checkpoint_path = folder / "tiny-clip.safetensors"
    save_file(
        {key: value.contiguous() for key, value in model.model.state_dict().items()}, str(checkpoint_path)
    )
    return config_path, checkpoint_path


def build_tiny_clip(folder: Path, seed: int = 0, **kwargs: Any) -> Any:
    """A tiny CLIP, loaded the way a user loads one: ``CLIP(model_path=<json>, pretrained=<checkpoint>)``."""
    from bp_clip.model import CLIP

    config_path, checkpoint_path = write_tiny_clip(Path(folder), seed=seed)
    return CLIP(model_path=str(config_path), pretrained=str(checkpoint_path), device="cpu", **kwargs)


class TinyClipPlugin:
    """A test plugin registering the tiny model under a name (``bpcore.register_plugin(TinyClipPlugin(...))``)."""

    def __init__(self, config_path: Path, checkpoint_path: Path, name: str = TINY_NAME) -> None:
        self.init_kwargs = {"model_path": str(config_path), "pretrained": str(checkpoint_path)}
        self.name = name

    @hookimpl
    def register_models(self, register: Any) -> None:
        tasks = [
            "image-classification",
            "image-vectorisation",
            "text-vectorisation",
            "image-text-vectorisation",
        ]
        register(
            name=self.name,
            factory="bp_clip.model:CLIP",
            tasks=tasks,
            finetunable=tasks,
            init_kwargs=self.init_kwargs,
            description="A tiny random CLIP for tests",
        )


def make_image(colour: str, pattern: str = "solid", seed: int = 0, size: int = 40) -> Image.Image:
    """A ``size``-pixel RGB image: a colour, a pattern (solid, stripes, checks) and a little noise."""
    rng = np.random.default_rng(seed)
    base = np.array(COLOURS[colour], dtype=np.float32)
    pixels = np.tile(base, (size, size, 1))
    y, x = np.mgrid[0:size, 0:size]
    if pattern == "stripes":
        pixels[(x // 4) % 2 == 0] *= 0.3
    elif pattern == "checks":
        pixels[((x // 5) + (y // 5)) % 2 == 0] *= 0.3
    pixels += rng.normal(0, 12, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def to_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
