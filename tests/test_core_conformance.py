"""The conformance kit: the tiny test models pass it, and a model that breaks a rule fails under that rule."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest
import torch
from tiny_models import TinyImageModel, TinyTextModel, TinyTextToTextModel

import bpcore
from bpcore.testing import (
    FUZZ_STATS,
    Candidate,
    ConformanceError,
    RuleSkipped,
    check_model,
    model_checks,
    parametrize_with_checks,
)

TEXT_TASKS = ["text-vectorisation", "text-classification"]


def tiny_text() -> TinyTextModel:
    torch.manual_seed(0)
    return TinyTextModel(name="tiny-text")


TINY_TEXT = Candidate(tiny_text, tasks=TEXT_TASKS, finetunable=TEXT_TASKS, name="tiny-text")


@parametrize_with_checks(
    [
        TINY_TEXT,
        Candidate(
            lambda: TinyImageModel(name="tiny-image"),
            tasks=["image-classification", "image-vectorisation", "image-text-vectorisation"],
            finetunable=["image-vectorisation", "image-text-vectorisation", "image-classification"],
            name="tiny-image",
        ),
        Candidate(
            lambda: TinyTextToTextModel(name="tiny-t2t"),
            tasks=["qa", "emotion", "summarisation", "text-generation"],
            finetunable=["qa", "emotion", "summarisation", "text-generation"],
            optimizer=lambda parameters: torch.optim.AdamW(parameters, lr=5e-2),
            name="tiny-t2t",
        ),
    ]
)
def test_the_tiny_models_conform(candidate, check):
    check(candidate)


# -- models that break one rule each ------------------------------------------------------------


class WrongCount(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        return super().__call__(task_input, task, return_tensor)[:1]


class TensorLeak(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        return self.embed(task_input["text"])  # a tensor even when JSON is due


class BatchDependent(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        vectors = self.embed(task_input["text"])
        vectors = vectors - vectors.mean(dim=0)  # every answer depends on the rest of the batch
        return vectors if return_tensor else vectors.tolist()


class Unsorted(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        answers = super().__call__(task_input, task, return_tensor)
        if task == "text-classification":
            return [dict(sorted(answer.items(), key=lambda item: item[1])) for answer in answers]
        return answers


class IgnoresTopK(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        return super().__call__({**task_input, "top_k": 0}, task, return_tensor)


class Noisy(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        vectors = self.embed(task_input["text"]) + torch.rand(1)  # random even in eval mode
        return vectors if return_tensor else vectors.tolist()


class PerCallState(TinyTextModel):
    """Keeps the call's texts on the model: another thread's call can replace them mid-call."""

    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        self.current = list(task_input["text"])
        time.sleep(0.001)
        vectors = self.embed(self.current)
        return vectors if return_tensor else vectors.tolist()


class PerCallStateSerialised(PerCallState):
    thread_safe = False


class ForgetsOnSave(TinyTextModel):
    def __init__(self, dim=None, name=None, description=None, tasks=None, details=None, device=None):
        super().__init__(dim, name, description, tasks, details, device)
        self.register_buffer("shift", torch.randn(self.dim), persistent=False)  # lost by save/load

    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        vectors = self.embed(task_input["text"]) + self.shift
        return vectors if return_tensor else vectors.tolist()


class LearnsNothing(TinyTextModel):
    def training_step(self, batch, task):
        return super().training_step(batch, task).detach().requires_grad_()


class ExportsBrokenModels:
    """The broken models' classes are exported, as a plugin would, so that save/load can rebuild them."""

    @bpcore.hookimpl
    def register_model_classes(self, register):
        for cls in (ForgetsOnSave, LearnsNothing):
            register(cls.__name__, f"{__name__}:{cls.__name__}")


@pytest.fixture(autouse=True)
def broken_model_classes():
    name = bpcore.register_plugin(ExportsBrokenModels(), "broken-model-classes")
    yield
    bpcore.unregister_plugin(name)


class Unexported(TinyTextModel):
    """Nothing registers this class: a saved model of it cannot be loaded safely."""


def test_a_model_class_no_plugin_exports_fails_save_load():
    with pytest.raises(ConformanceError, match=r"\[save-load\].*no installed plugin registers"):
        run_rule(vectoriser(Unexported), "save-load")


def vectoriser(cls: type) -> Candidate:
    return Candidate(lambda: cls(name="broken-model"), tasks=["text-vectorisation"], name=cls.__name__)


def classifier(cls: type) -> Candidate:
    return Candidate(lambda: cls(name="broken-model"), tasks=["text-classification"], name=cls.__name__)


def run_rule(candidate: Candidate, rule: str) -> None:
    checks = [check for check in model_checks(candidate) if check.rule == rule]
    assert checks, f"no {rule} check for {candidate.id}"
    for check in checks:
        check(candidate)


@pytest.mark.parametrize(
    ("candidate", "rule", "message"),
    [
        (vectoriser(WrongCount), "answer-shape", "returned 1 answers for 4 items"),
        (vectoriser(TensorLeak), "answer-shape", "asks for a list with one JSON-ready answer per item"),
        (classifier(Unsorted), "answer-shape", "not sorted by probability"),
        (vectoriser(BatchDependent), "single-equals-batched", "alone and in a batch differ at"),
        (classifier(IgnoresTopK), "top-k", "top_k=1"),
        (vectoriser(Noisy), "deterministic", "two calls gave different answers"),
        (vectoriser(PerCallState), "thread-safe", "differ from the same call made alone"),
        (vectoriser(ForgetsOnSave), "save-load", "differ after save and load"),
        (
            Candidate(
                lambda: LearnsNothing(name="broken-model"),
                tasks=["text-vectorisation"],
                finetunable=["text-vectorisation"],
                name="LearnsNothing",
            ),
            "finetuning-learns",
            "left every weight unchanged",
        ),
    ],
    ids=lambda value: value.id if isinstance(value, Candidate) else None,
)
def test_a_model_that_breaks_a_rule_fails_under_its_name(candidate, rule, message):
    with pytest.raises(ConformanceError, match=message) as caught:
        run_rule(candidate, rule)
    assert caught.value.rule == rule
    assert str(caught.value).startswith(f"[{rule}]")


def test_a_model_that_asks_to_be_called_one_thread_at_a_time_passes_the_thread_rule():
    run_rule(vectoriser(PerCallStateSerialised), "thread-safe")


def test_return_tensor_rule_catches_a_model_that_ignores_it():
    class NoTensor(TinyTextModel):
        def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
            return self.embed(task_input["text"]).tolist()

    with pytest.raises(ConformanceError, match=r"\[return-tensor\].*torch.Tensor"):
        run_rule(vectoriser(NoTensor), "return-tensor")


def test_check_model_lists_every_broken_rule():
    with pytest.raises(ConformanceError) as caught:
        check_model(vectoriser(Noisy))
    text = str(caught.value)
    assert "deterministic-text-vectorisation" in text and "save-load-text-vectorisation" in text
    check_model(Candidate(tiny_text, tasks=["text-vectorisation"], name="tiny-text"))  # conforms: no error


def test_a_plugin_module_that_imports_torch_fails_the_light_module_rule(tmp_path: Path, monkeypatch):
    site = tmp_path / "site"
    dist_info = site / "heavy_plugin-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: heavy-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[bpcore]\nheavy = heavy_plugin\n")
    (site / "heavy_plugin.py").write_text(
        textwrap.dedent(
            """
            import torch  # the mistake: every `bpcore list-models` would now pay for torch
            import bpcore

            @bpcore.hookimpl
            def register_models(register):
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    candidate = Candidate(tiny_text, tasks=["text-vectorisation"], plugin="heavy", name="heavy")
    with pytest.raises(ConformanceError, match=r"\[light-plugin-module\].*torch"):
        run_rule(candidate, "light-plugin-module")


# -- messages a plugin author can act on ----------------------------------------------------------


class RaisesOnCall(TinyTextModel):
    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        raise ValueError("the model's own bug")


def test_a_model_that_raises_is_a_protocol_error_naming_model_and_plugin():
    tv = bpcore.TextVectorisation(RaisesOnCall(name="raising-model"))
    with pytest.raises(bpcore.ModelProtocolError, match=r"'raising-model' \(RaisesOnCall from .*ValueError"):
        tv("a text")


def test_check_model_lists_a_raising_model_under_each_rule_instead_of_stopping():
    counted = dict(FUZZ_STATS)  # this model's expected bad-input failures are not the suite's
    try:
        with pytest.raises(ConformanceError) as caught:
            check_model(vectoriser(RaisesOnCall))
    finally:
        FUZZ_STATS.update(counted)
    text = str(caught.value)
    for rule in ("answer-shape", "single-equals-batched", "thread-safe", "save-load"):
        assert f"{rule}-text-vectorisation" in text
    assert "the model's own bug" in text


def test_a_rule_that_does_not_apply_is_skipped_not_passed():
    candidate = Candidate(tiny_text, tasks=["text-vectorisation"], name="from-no-plugin")
    check = next(check for check in model_checks(candidate) if check.rule == "light-plugin-module")
    with pytest.raises(RuleSkipped, match="comes from no installed plugin"):
        check(candidate)
    assert "light-plugin-module" in check_model(candidate)


class ThousandLabels(TinyTextModel):
    """Answers 1,000 labels with probabilities above 1."""

    def __call__(self, task_input, task="text-classification", return_tensor=False):
        return [{f"label-{i}": 2.0 + i for i in range(1000)} for _ in task_input["text"]]


def test_a_broken_answer_is_shown_briefly():
    with pytest.raises(ConformanceError, match="outside") as caught:
        run_rule(
            Candidate(
                lambda: ThousandLabels(name="broken-model"),
                tasks=["text-classification"],
                inputs={"text-classification": {"labels": None}},
                name="ThousandLabels",
            ),
            "answer-shape",
        )
    assert len(str(caught.value)) < 400


class LosesHalfOnSave(TinyTextModel):
    def apply_extra_config(self, config):
        super().apply_extra_config(config)
        self.halve = True

    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        vectors = self.embed(task_input["text"]) * (0.5 if getattr(self, "halve", False) else 1.0)
        return vectors if return_tensor else vectors.tolist()


class ExportsLosesHalf:
    @bpcore.hookimpl
    def register_model_classes(self, register):
        register("LosesHalfOnSave", f"{__name__}:LosesHalfOnSave")


def test_a_save_load_mismatch_shows_both_answers_where_they_differ():
    name = bpcore.register_plugin(ExportsLosesHalf(), "loses-half")
    try:
        with pytest.raises(ConformanceError) as caught:
            run_rule(vectoriser(LosesHalfOnSave), "save-load")
    finally:
        bpcore.unregister_plugin(name)
    message = str(caught.value)
    assert re.search(r"at \[0\]\[0\]: -?\d\.\d+ vs -?\d\.\d+", message), message


class WideLogits(TinyTextModel):
    """Classifies with a head as wide as the embedding, whatever the labels."""

    def pre_finetuning(self, labels=None, num_classes=None, multi_label=False):
        super().pre_finetuning(labels, num_classes, multi_label)
        self.head = torch.nn.Linear(self.dim, self.dim)

    def training_step(self, batch, task):
        return self.head(self.embedding(batch["ids"], batch["offsets"]))


def test_logits_of_the_wrong_width_are_refused_before_the_loss_naming_training_step():
    tc = bpcore.TextClassification(WideLogits(name="wide"))
    data = {"texts": ["a b", "c d", "e f", "g h"], "labels": [["x"], ["y"], ["x", "y"], ["y"]]}
    with pytest.raises(
        bpcore.TrainingError, match=r"training_step returned a tensor of shape \[\d+, 16\].*\[\d+, 2\]"
    ):
        tc.finetune(data, variant="multi_label", epochs=1, validation_split=0.0, seed=0)
