"""The bad-input rule: malformed inputs get bpcore errors naming the field, and leaks are caught."""

from __future__ import annotations

import pytest
import torch
from tiny_models import TinyTextModel

from bpcore.testing import Candidate, ConformanceError, fuzz, model_checks


def tiny_text() -> TinyTextModel:
    torch.manual_seed(0)
    return TinyTextModel(name="tiny-text")


def run_rule(candidate: Candidate, variant: bool = False) -> None:
    for check in model_checks(candidate):
        if check.rule == "bad-input" and (check.variant is not None) == variant:
            check(candidate)


class LeaksKeyError(TinyTextModel):
    """A model that crashes on a text the core lets through (an empty-looking one)."""

    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        if any(not text.strip() for text in task_input["text"]):
            raise KeyError("blank")
        return super().__call__(task_input, task, return_tensor)


class ProtocolBreaker(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        answers = super().__call__(task_input, task, return_tensor)
        return answers[:1] if len(task_input["text"]) > 4 else answers


@pytest.fixture
def uncounted():
    """The deliberately broken models' cases do not count in the session's fuzz summary."""
    saved = dict(fuzz.FUZZ_STATS)
    yield
    fuzz.FUZZ_STATS.update(saved)


def test_the_rule_is_part_of_the_kit_per_task_and_variant():
    candidate = Candidate(tiny_text, tasks=["text-vectorisation"], finetunable=["text-vectorisation"])
    ids = [check.id for check in model_checks(candidate) if check.rule == "bad-input"]
    assert ids == [
        "bad-input-text-vectorisation",
        "bad-input-text-vectorisation-cosine_similarity",
        "bad-input-text-vectorisation-triplet",
    ]


def test_a_model_that_leaks_a_raw_exception_fails_the_rule(uncounted):
    candidate = Candidate(lambda: LeaksKeyError(name="leaky"), tasks=["text-vectorisation"], name="leaky")
    before = fuzz.FUZZ_STATS["failures"]
    with pytest.raises(
        ConformanceError, match=r"\[bad-input\].*failed on text-vectorisation: KeyError"
    ) as caught:
        run_rule(candidate)
    assert caught.value.rule == "bad-input"
    assert fuzz.FUZZ_STATS["failures"] > before


def test_a_model_that_breaks_the_protocol_on_accepted_input_fails_the_rule(uncounted):
    candidate = Candidate(
        lambda: ProtocolBreaker(name="breaker"), tasks=["text-vectorisation"], name="breaker"
    )
    with pytest.raises(ConformanceError, match="broke the protocol"):
        run_rule(candidate)


def test_cases_are_counted_and_deterministic():
    seen: list[list[str]] = []
    original = fuzz.attempt
    for _ in range(2):
        labels: list[str] = []

        def recording(run, label, labels=labels):
            labels.append(label)
            original(run, label)

        fuzz.attempt = recording
        try:
            before = fuzz.fuzz_count()
            candidate = Candidate(tiny_text, tasks=["text-vectorisation"], fuzz_examples=(40, 10))
            run_rule(candidate)
            assert fuzz.fuzz_count() - before == len(labels) >= 40
        finally:
            fuzz.attempt = original
        seen.append(labels)
    assert seen[0] == seen[1]


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
def test_finetune_fuzzing_rejects_before_training_and_leaves_the_weights():
    model = tiny_text()
    candidate = Candidate(lambda: model, tasks=["text-vectorisation"], finetunable=["text-vectorisation"])
    rejected: list[bool] = []
    original = fuzz.attempt

    def watching(run, label):
        before = {key: value.clone() for key, value in model.state_dict().items()}
        try:
            run()
        except Exception:
            after = model.state_dict()
            rejected.append(all(torch.equal(before[key], after[key]) for key in before))
        original(lambda: None, label)

    fuzz.attempt = watching
    try:
        for check in model_checks(candidate):
            if check.id == "bad-input-text-vectorisation-cosine_similarity":
                check(candidate)
    finally:
        fuzz.attempt = original
    assert len(rejected) > 30 and all(rejected)
