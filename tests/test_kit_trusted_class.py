"""The conformance kit on a model class defined in a test module, which no plugin registers.

``bpcore.load`` refuses to import such a class (the folder names it), so the kit's save and load
rules failed with ``UnsafeLoadError``; ``Candidate(..., trust_code=True)`` trusts exactly the
class the candidate builds, and a folder naming any other class is still refused.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from typing_extensions import Unpack

import bpcore
from bpcore.plugins import BaseModel, ModelIdentity
from bpcore.testing import Candidate, ConformanceError, model_checks, parametrize_with_checks

TASKS = ["text-vectorisation"]


class LetterCounts(BaseModel):
    """Counts a few letters of each text, each count scaled by a weight."""

    default_tasks = ("text-vectorisation",)
    letters = "etaoin"

    def __init__(self, **identity: Unpack[ModelIdentity]) -> None:
        super().__init__(None, **identity)
        self.scale = torch.nn.Parameter(torch.linspace(0.5, 1.5, len(self.letters)))

    def __call__(
        self, task_input: dict[str, Any], task: str = "text-vectorisation", return_tensor: bool = False
    ) -> Any:
        counts = [[float(text.lower().count(c)) for c in self.letters] for text in task_input["text"]]
        vectors = torch.tensor(counts) * self.scale + 1.0
        return vectors if return_tensor else vectors.tolist()


class OtherCounts(LetterCounts):
    """Another class of this module: trusting LetterCounts does not trust it."""

    letters = "shrdlu"


TRUSTED = Candidate(LetterCounts, tasks=TASKS, trust_code=True, fuzz_examples=(40, 0))
LOADING_RULES = {"save-load-text-vectorisation", "saved-paths-inside", "saved-files-required"}


@parametrize_with_checks([TRUSTED])
def test_a_class_defined_in_a_test_module_passes_the_kit_when_trusted(candidate, check):
    check(candidate)


def test_the_loading_rules_ran_on_the_trusted_class():
    assert LOADING_RULES <= {check.id for check in model_checks(TRUSTED)}


@pytest.mark.parametrize("rule", sorted(LOADING_RULES))
def test_untrusted_the_loading_rules_fail_saying_how_to_trust_it(rule):
    candidate = Candidate(LetterCounts, tasks=TASKS)
    check = next(check for check in model_checks(candidate) if check.id == rule)
    with pytest.raises(ConformanceError, match=r"UnsafeLoadError.*Candidate\(\.\.\., trust_code=True\)"):
        check(candidate)


def test_trust_covers_the_candidates_class_and_no_other(tmp_path):
    other = OtherCounts()
    bpcore.save(other, "other", path=tmp_path / "other")
    with pytest.raises(bpcore.UnsafeLoadError, match="no installed plugin registers"):
        TRUSTED.load_saved(tmp_path / "other", LetterCounts())  # the folder names OtherCounts
    loaded = Candidate(OtherCounts, tasks=TASKS, trust_code=True).load_saved(tmp_path / "other", other)
    assert type(loaded) is OtherCounts
    assert bpcore.TextVectorisation(loaded)("shrdlu") == bpcore.TextVectorisation(other)("shrdlu")
