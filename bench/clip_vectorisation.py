"""Image vectorisation: bpcore's ImageVectorisation vs a plain batched open_clip encode_image loop, in one run.

Same model object (random weights, built offline), same preprocessing, same batch size of 32;
best of a few repeats. bpcore adds input validation and decoding on top: the target is to stay
within 5% (ratio >= 0.95).

    python bench/clip_vectorisation.py [--arch ViT-S-32-alt] [--images 96] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from PIL import Image

import bpcore
from bp_clip.model import CLIP


def images(count: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), "RGB") for _ in range(count)]


def plain_open_clip(model, preprocess, batch: list[Image.Image]) -> torch.Tensor:
    with torch.inference_mode():
        vectors = []
        for start in range(0, len(batch), 32):
            pixels = torch.stack([preprocess(image) for image in batch[start : start + 32]])
            vectors.append(model.encode_image(pixels, normalize=True))
        return torch.cat(vectors)


def best_of(repeat: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="ViT-S-32-alt", help="open_clip architecture (random weights)")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # open_clip warns that the weights are random
    torch.manual_seed(0)

    model = CLIP(args.arch, pretrained=None, device="cpu")
    batch = images(args.images)
    iv = bpcore.ImageVectorisation(model)
    iv(batch[:2])  # warm-up
    plain_open_clip(model.model, model.preprocess, batch[:2])

    # Interleaved, so both see the same machine load.
    bpcore_times, plain_times = [], []
    for _ in range(args.repeat):
        seconds, vectors = best_of(1, lambda: iv(batch, return_tensor=True))
        bpcore_times.append(seconds)
        seconds, expected = best_of(1, lambda: plain_open_clip(model.model, model.preprocess, batch))
        plain_times.append(seconds)
    same = torch.allclose(vectors, expected, atol=1e-5)
    bpcore_seconds, plain_seconds = min(bpcore_times), min(plain_times)
    print(f"architecture {args.arch} (random weights), {args.images} images, best of {args.repeat}")
    print(
        f"bpcore ImageVectorisation      {bpcore_seconds:7.2f} s  ({args.images / bpcore_seconds:6.1f} images/s)"
    )
    print(
        f"plain open_clip encode_image   {plain_seconds:7.2f} s  ({args.images / plain_seconds:6.1f} images/s)"
    )
    print(f"ratio  {plain_seconds / bpcore_seconds:.2f}x  (target >= 0.95x)   same vectors: {same}")
    assert same


if __name__ == "__main__":
    main()
