"""The saved-folder rules of the conformance kit: the tiny models pass, a model breaking a rule fails under it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from tiny_models import TinyImageModel, TinyTextModel

import bpcore
from bpcore.testing import Candidate, ConformanceError
from bpcore.testing.folder_checks import FOLDER_STATS, folder_checks

TEXT_TASKS = ["text-vectorisation", "text-classification"]


class Escaping(TinyTextModel):
    """Saves its weights under a name in its config, and joins that name to the folder itself."""

    def save_files(self, directory):
        config = super().save_files(directory)
        return {**config, "weights_name": config["weights"]}

    @classmethod
    def from_saved(cls, directory, config, device=None):
        from safetensors.torch import load_model

        model = cls(**config["init_arguments"], device=device)
        load_model(model, str(Path(directory) / config["weights_name"]))  # no check: may lead anywhere
        return model


class Unbounded(TinyTextModel):
    """Allocates ``width`` squared floats at call time, with no bound on ``width``."""

    def __init__(
        self, dim=None, width: int = 8, name=None, description=None, tasks=None, details=None, device=None
    ):
        super().__init__(dim, name, description, tasks, details, device)
        self.width = width

    def embed(self, texts, max_length=None):
        # A saved width of 10**9 asks for 10**18 floats: refused by the allocator on any machine.
        padding = torch.zeros(self.width, self.width)
        return super().embed(texts, max_length) + padding.sum() * 0


class BrokenClasses:
    @bpcore.hookimpl
    def register_model_classes(self, register):
        for name in ("Escaping", "Unbounded"):
            register(name, f"{__name__}:{name}")


@pytest.fixture(autouse=True)
def broken_classes():
    name = bpcore.register_plugin(BrokenClasses(), name="broken-folder-classes")
    yield
    bpcore.unregister_plugin(name)


def candidate(factory, name: str) -> Candidate:
    return Candidate(factory, tasks=TEXT_TASKS, name=name)


def run(rule: str, subject: Candidate) -> None:
    check = next(check for check in folder_checks(subject) if check.rule == rule)
    check(subject)


@pytest.mark.parametrize("rule", ["saved-paths-inside", "saved-files-required", "saved-numbers-bounded"])
@pytest.mark.parametrize(
    "subject",
    [
        candidate(lambda: TinyTextModel(dim=12, name="tiny-text"), "tiny-text"),
        Candidate(
            lambda: TinyImageModel(dim=12, name="tiny-image"),
            tasks=["image-vectorisation"],
            name="tiny-image",
        ),
    ],
    ids=lambda subject: subject.id,
)
def test_the_tiny_models_pass_the_folder_rules_quickly(rule, subject, seeded):
    FOLDER_STATS.clear()
    start = time.perf_counter()
    run(rule, subject)
    assert FOLDER_STATS[rule] >= 2, "the rule damaged nothing"
    assert time.perf_counter() - start < 30


def test_a_model_that_joins_saved_names_itself_reads_outside_and_breaks_paths_inside(seeded):
    escaping = candidate(lambda: Escaping(name="escaping"), "escaping")
    with pytest.raises(ConformanceError) as broken:
        run("saved-paths-inside", escaping)
    assert broken.value.rule == "saved-paths-inside"
    assert "['model']['weights_name']" in str(broken.value)
    assert "outside the saved folder" in str(broken.value)


def test_a_size_with_no_bound_breaks_numbers_bounded_without_exhausting_memory(seeded):
    unbounded = candidate(lambda: Unbounded(width=4, name="unbounded"), "unbounded")
    with pytest.raises(ConformanceError) as broken:
        run("saved-numbers-bounded", unbounded)
    assert broken.value.rule == "saved-numbers-bounded"
    assert "['model']['init_arguments']['width'] = 1000000000" in str(broken.value)


def test_folder_checks_are_checks_named_by_rule():
    checks = list(folder_checks(candidate(TinyTextModel, "tiny-text")))
    assert [check.id for check in checks] == [
        "saved-paths-inside",
        "saved-files-required",
        "saved-numbers-bounded",
    ]


def test_watching_reports_what_a_block_reads_under_a_folder(tmp_path):
    from bpcore.testing.folders import watching

    (tmp_path / "decoy").mkdir()
    (tmp_path / "decoy" / "secret.txt").write_text("x")
    with watching(tmp_path / "decoy") as opened:
        pass
    assert opened == []
    with watching(tmp_path / "decoy") as opened:
        (tmp_path / "decoy" / "secret.txt").read_text()
    assert str(tmp_path / "decoy" / "secret.txt") in opened
