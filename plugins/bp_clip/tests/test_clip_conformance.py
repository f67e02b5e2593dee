"""bp-clip's CLIP passes bpcore's conformance kit: one test per task and rule, on a tiny OpenCLIP model."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tiny_clip import build_tiny_clip

from bpcore.testing import Candidate, parametrize_with_checks

TASKS = ["image-classification", "image-vectorisation", "text-vectorisation", "image-text-vectorisation"]
# Written once per test session; every check builds a fresh model from the same files.
FOLDER = Path(tempfile.mkdtemp(prefix="bp-clip-conformance-"))


def tiny_clip():
    return build_tiny_clip(FOLDER, name="tiny-clip")


@parametrize_with_checks(
    [Candidate(tiny_clip, tasks=TASKS, finetunable=TASKS, name="tiny-clip", plugin="clip")]
)
def test_conformance(candidate, check):
    check(candidate)
