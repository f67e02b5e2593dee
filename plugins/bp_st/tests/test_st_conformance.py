"""bp-st's registered default passes bpcore's conformance kit (one test per rule)."""

from __future__ import annotations

import torch

from bpcore.testing import Candidate, parametrize_with_checks


def adamw(parameters):
    # A pretrained encoder: a gentler step than the kit's default for tiny random models.
    return torch.optim.AdamW([p for p in parameters if p.requires_grad], lr=5e-5)


@parametrize_with_checks([Candidate.registered("all-minilm-l6-v2", optimizer=adamw, finetune_epochs=3)])
def test_conformance(candidate, check):
    check(candidate)
