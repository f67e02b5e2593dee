"""bp-effnet's EfficientNet passes bpcore's conformance kit, on a random-weights timm EfficientNet at 64 px."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tiny_effnet import IMAGE_SIZE, TIMM_MODEL, effnet_weights_file

from bpcore.testing import Candidate, parametrize_with_checks

# Written once per session; every check builds a fresh model from the same weights file.
WEIGHTS = effnet_weights_file(Path(tempfile.mkdtemp(prefix="bp-effnet-conformance-")))


def tiny_effnet():
    from bp_effnet import EfficientNet

    return EfficientNet(TIMM_MODEL, pretrained=str(WEIGHTS), image_size=IMAGE_SIZE, name="tiny-effnet")


@parametrize_with_checks(
    [
        Candidate(
            tiny_effnet,
            tasks=["image-classification"],
            finetunable=["image-classification"],
            # No zero-shot labels: it answers over ImageNet's classes, or the ones it was finetuned on.
            inputs={"image-classification": {"labels": None}},
            # Its own optimizer (SGD with a warm-up, a faster head) is what trains a fresh head stably.
            optimizer=None,
            name="tiny-effnet",
            plugin="effnet",
        )
    ]
)
def test_conformance(candidate, check):
    check(candidate)
