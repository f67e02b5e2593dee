"""``backend="openvino"`` for zero-shot (HFNLIModel) and finetuned (HFSeqTCModel) text classification.

The torch path's answers, exported once, cached, exported again when damaged or finetuned.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import warnings

import pytest
import torch
from tiny_hf import tiny_bert_folder, tiny_nli_folder

import bpcore
from bp_hf import HFNLIModel, HFSeqTCModel
from bpcore.plugins import export_cache

needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason="OpenVINO is not installed (pip install 'bp-hf[openvino]')",
)

TEXTS = [
    "i hate this movie",
    "the vote passed in parliament today",
    "the team won the cup",
    "rain",
    " ".join(["a long text about the football season and the election"] * 30),  # truncated
]
LABELS = ["sports", "politics", "film", "weather"]
TOPICS = {0: "politics", 1: "sports", 2: "weather"}


def decisive(folder):
    """The tiny model with every linear layer's weights scaled up: its random initial weights are so
    small that every text gets nearly the same logits, and the same labels in the same order would
    compare near-ties."""
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(str(folder))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(25)
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def nli_path(tmp_path_factory):
    return decisive(tiny_nli_folder(tmp_path_factory.mktemp("nli") / "nli"))


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    """A tiny BERT classifier whose head has labels already, so it answers without finetuning."""
    return decisive(tiny_bert_folder(tmp_path_factory.mktemp("topics") / "topics", id2label=TOPICS))


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One BPCORE_HOME for the module, so each model is exported once for all its tests."""
    return tmp_path_factory.mktemp("openvino-home")


@pytest.fixture
def home(bpcore_home, shared_home, monkeypatch):
    monkeypatch.setenv("BPCORE_HOME", str(shared_home))
    return shared_home


def exports():
    folder = export_cache("openvino")
    return (
        sorted(path for path in folder.iterdir() if not path.name.startswith(".")) if folder.exists() else []
    )


def torch_forwards(model):
    """A list that grows by one per forward pass of the torch classifier (OpenVINO's passes leave it empty)."""
    calls = []
    model.model.register_forward_hook(lambda *_: calls.append(1))
    return calls


def tolerance(model):
    # f32 agrees to ~1e-8; OpenVINO runs bf16 where the CPU computes it, which agrees far less.
    precision = model._openvino.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return 1e-4 if precision == "f32" else 3e-2


def assert_same_answers(got, expected, tol):
    for answer, wanted in zip(got, expected, strict=True):
        assert answer == pytest.approx(wanted, abs=tol)
        if tol <= 1e-4:  # bf16 may swap labels whose probabilities differ by less than its rounding
            assert list(answer) == list(wanted)  # the same labels, in the same order


@needs_openvino
def test_zero_shot_answers_are_the_torch_backends(home, nli_path):
    torch_tc = bpcore.TextClassification(HFNLIModel(nli_path))
    model = HFNLIModel(nli_path).set_backend("openvino")
    calls = torch_forwards(model)
    tc = bpcore.TextClassification(model)

    assert model.backend == "openvino"
    assert_same_answers(tc(TEXTS, LABELS), torch_tc(TEXTS, LABELS), tolerance(model))
    assert_same_answers([tc(TEXTS[0], LABELS)], [torch_tc(TEXTS[0], LABELS)], tolerance(model))
    per_text = [LABELS[:2], LABELS[1:]] * 2 + [LABELS]
    assert_same_answers(tc(TEXTS, per_text), torch_tc(TEXTS, per_text), tolerance(model))
    multi = {"text": TEXTS, "labels": [LABELS] * len(TEXTS), "multi_label": True}
    assert_same_answers(model(multi), torch_tc.model(multi), tolerance(model))
    assert not calls  # OpenVINO answered: the torch classifier never ran
    assert len(exports()) == 1


@needs_openvino
def test_sequence_classification_answers_are_the_torch_backends(home, classifier_path):
    torch_tc = bpcore.TextClassification(HFSeqTCModel(classifier_path))
    model = HFSeqTCModel(classifier_path, backend="openvino")
    calls = torch_forwards(model)
    tc = bpcore.TextClassification(model)

    assert_same_answers(tc(TEXTS), torch_tc(TEXTS), tolerance(model))
    assert_same_answers(
        tc(TEXTS, ["sports", "weather"]), torch_tc(TEXTS, ["sports", "weather"]), tolerance(model)
    )
    assert not calls
    # Its export is its own: single texts, not the NLI model's text pairs.
    assert model._openvino.input_names == ["input_ids", "attention_mask"]


@needs_openvino
def test_the_second_load_reuses_the_cached_export(home, nli_path, capfd):
    HFNLIModel(nli_path, backend="openvino")  # exported now, or by a test before
    folder = HFNLIModel(nli_path, backend="openvino")._openvino.folder
    before = {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.iterdir()}
    capfd.readouterr()

    model = HFNLIModel(nli_path, backend="openvino")

    assert "exporting" not in capfd.readouterr().err
    assert model._openvino.folder == folder
    assert {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.iterdir()} == before


@needs_openvino
def test_a_damaged_cache_is_exported_again_and_killed_exports_are_cleared(
    home, tmp_path, monkeypatch, nli_path, capfd
):
    folder = HFNLIModel(nli_path, backend="openvino")._openvino.folder
    # A copy of the cache, damaged: the shared one stays whole for the other tests.
    monkeypatch.setenv("BPCORE_HOME", str(tmp_path / "home"))
    copy = export_cache("openvino") / folder.name
    shutil.copytree(folder, copy)
    # One weight byte flipped: the files still parse, and would silently give wrong answers.
    with (copy / "model.bin").open("r+b") as file:
        file.seek(4096)
        byte = file.read(1)
        file.seek(4096)
        file.write(bytes([byte[0] ^ 0xFF]))
    # What an export killed halfway leaves: a temporary folder named by its (now gone) process.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    leftover = export_cache("openvino") / f".{folder.name}.{gone.pid}-half"
    leftover.mkdir()
    capfd.readouterr()

    model = HFNLIModel(nli_path, backend="openvino")

    err = capfd.readouterr().err
    assert "unusable" in err and "exporting" in err
    assert not leftover.exists()
    expected = bpcore.TextClassification(HFNLIModel(nli_path))(TEXTS, LABELS)
    assert_same_answers(bpcore.TextClassification(model)(TEXTS, LABELS), expected, tolerance(model))
    HFNLIModel(nli_path, backend="openvino")
    assert "exporting" not in capfd.readouterr().err  # the new export replaced the damaged one


@needs_openvino
def test_finetuning_trains_the_torch_weights_and_the_next_call_exports_them(
    home, classifier_path, copy_folder, tmp_path
):
    model = HFSeqTCModel(copy_folder(classifier_path), backend="openvino")
    tc = bpcore.TextClassification(model)
    before = tc(TEXTS)
    exported = model._openvino.folder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no validation split: expected, with four texts
        tc.finetune(
            {"texts": TEXTS[:4], "labels": ["weather", "politics", "sports", "weather"]},
            validation_split=0,
            epochs=3,
            batch_size=4,
            early_stopping_epochs=0,
            seed=0,
            configure_optimizers=lambda: torch.optim.AdamW(model.parameters(), lr=1e-2),
        )
    after = tc(TEXTS)
    tol = tolerance(model)

    assert model.backend == "openvino"
    assert model._openvino.folder != exported  # the finetuned weights have their own export
    assert after[0] != pytest.approx(before[0], abs=1e-3)  # the finetuned weights answer, not the old export
    model.set_backend("torch")
    assert_same_answers(after, tc(TEXTS), tol)
    # The saved folder is the torch one: the backend is chosen when running, not saved.
    saved = bpcore.save(model.set_backend("openvino"), "finetuned-openvino", path=tmp_path / "saved")
    assert not [path for path in saved.rglob("*") if path.suffix == ".xml"]
    assert bpcore.load(saved).backend == "torch"


def test_an_unknown_backend_is_refused(nli_path):
    with pytest.raises(bpcore.InputError, match="torch, openvino") as caught:
        HFNLIModel(nli_path, backend="onnx")
    assert caught.value.field == "backend"


def test_without_openvino_the_error_names_the_extra(run_python, nli_path, tmp_path):
    code = f"""
import sys
sys.modules["openvino"] = None  # as if not installed
import bpcore
from bp_hf import HFNLIModel
try:
    HFNLIModel({str(nli_path)!r}, backend="openvino")
except bpcore.ModelLoadError as error:
    print("ERROR", error)
tc = bpcore.TextClassification(HFNLIModel({str(nli_path)!r}))  # the torch path needs no OpenVINO
print("ANSWER", sorted(tc("rain", ["sports", "weather"])))
"""
    result = run_python(code, BPCORE_HOME=str(tmp_path), HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR backend='openvino' needs OpenVINO" in result.stdout
    assert "pip install 'bp-hf[openvino]'" in result.stdout
    assert "ANSWER ['sports', 'weather']" in result.stdout
