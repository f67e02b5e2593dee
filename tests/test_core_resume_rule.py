"""The conformance kit's ``resume`` rule: passes for a model whose training state the checkpoint holds,
fails, naming the rule, for one that keeps some outside it."""

from __future__ import annotations

import pytest
import torch
from tiny_models import TinyTextModel

from bpcore.testing import Candidate, ConformanceError
from bpcore.testing.resume_checks import resume_checks

TASKS = ["text-vectorisation", "text-classification"]


class WarmupOutsideTheState(torch.optim.SGD):
    """A warm-up whose step counter is an attribute, not part of ``state_dict``: a resume restarts it."""

    def __init__(self, parameters):
        super().__init__(parameters, lr=0.1)
        self.steps = 0
        self._warm_up()

    def _warm_up(self) -> None:
        for group in self.param_groups:
            group["lr"] = 0.1 * min(1.0, (self.steps + 1) / 10)

    def step(self, closure=None):
        loss = super().step(closure)
        self.steps += 1
        self._warm_up()
        return loss


def candidate(**overrides) -> Candidate:
    return Candidate(lambda: TinyTextModel(name="tiny-text"), tasks=TASKS, finetunable=TASKS, **overrides)


def test_one_check_for_the_first_finetunable_task_and_variant():
    checks = list(resume_checks(candidate()))
    assert [check.id for check in checks] == ["resume-text-vectorisation-cosine_similarity"]
    skipping = candidate(skip_variants=[("text-vectorisation", "cosine_similarity")])
    assert [check.id for check in resume_checks(skipping)] == ["resume-text-vectorisation-triplet"]


def test_a_model_whose_state_the_checkpoint_holds_passes():
    # The factory draws unseeded random weights: the rule starts every run from the same ones.
    tiny = candidate()
    [check] = resume_checks(tiny)
    check(tiny)


def test_training_state_outside_the_checkpoint_fails_naming_the_rule():
    broken = candidate(optimizer=WarmupOutsideTheState)
    [check] = resume_checks(broken)
    with pytest.raises(ConformanceError, match=r"^\[resume\] text-vectorisation/cosine_similarity: resumed"):
        check(broken)
