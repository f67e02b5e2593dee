"""Zero-shot image classification, 100 images x 1,000 labels: bpcore vs a plain open_clip loop, in one run.

bpcore encodes a label list once and reuses it (a cache keyed by the labels); the plain loop,
as open_clip's README writes it, encodes the labels on every call. Timed: the second call with
the same labels. Both use the same model object (random weights, built offline), the same
preprocessing, tokenizer and prompt, and must give the same probabilities.

    python bench/clip_zero_shot.py [--arch ViT-S-32-alt] [--images 100] [--labels 1000]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from open_clip.zero_shot_classifier import build_zero_shot_classifier
from PIL import Image

import bpcore
from bp_clip.model import CLIP
from bp_clip.zero_shot import DEFAULT_LABEL_TEMPLATE


def images(count: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), "RGB") for _ in range(count)]


def plain_open_clip(
    model, preprocess, tokenizer, batch: list[Image.Image], labels: list[str]
) -> torch.Tensor:
    """What a user writes with open_clip alone: encode the labels, encode the images, softmax."""
    with torch.inference_mode():
        classifier = build_zero_shot_classifier(
            model, tokenizer, labels, [DEFAULT_LABEL_TEMPLATE], num_classes_per_batch=128
        )
        features = []
        for start in range(0, len(batch), 32):
            pixels = torch.stack([preprocess(image) for image in batch[start : start + 32]])
            features.append(model.encode_image(pixels, normalize=True))
        scale = model.logit_scale.exp().clamp(max=100.0)
        return (scale * torch.cat(features) @ classifier).softmax(dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="ViT-S-32-alt", help="open_clip architecture (random weights)")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--labels", type=int, default=1000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # open_clip warns that the weights are random
    torch.manual_seed(0)

    model = CLIP(args.arch, pretrained=None, device="cpu")
    batch = images(args.images)
    labels = [f"object category number {index}" for index in range(args.labels)]
    ic = bpcore.ImageClassification(model)

    start = time.perf_counter()
    ic(batch, labels)  # first call: encodes the labels and caches them
    first = time.perf_counter() - start
    start = time.perf_counter()
    answers = ic(batch, labels)
    bpcore_seconds = time.perf_counter() - start

    start = time.perf_counter()
    expected = plain_open_clip(model.model, model.preprocess, model.tokenizer, batch, labels)
    plain_seconds = time.perf_counter() - start

    got = torch.tensor([[answer[label] for label in labels] for answer in answers])
    same = torch.allclose(got, expected, atol=1e-5)
    print(f"architecture {args.arch} (random weights), {args.images} images x {args.labels} labels")
    print(f"bpcore first call (encodes labels)   {first:7.2f} s")
    print(f"bpcore second call (cached labels)   {bpcore_seconds:7.2f} s")
    print(f"plain open_clip loop                 {plain_seconds:7.2f} s")
    print(f"speed-up  {plain_seconds / bpcore_seconds:.1f}x  (target >= 2x)   same probabilities: {same}")
    assert same, float((got - expected).abs().max())


if __name__ == "__main__":
    main()
