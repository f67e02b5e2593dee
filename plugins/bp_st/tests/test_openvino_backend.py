"""``backend="openvino"`` on the real all-MiniLM-L6-v2: the torch path's vectors, exported once, cached, rebuilt when stale."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import bpcore
from bp_st import STModel
from bp_st.openvino_backend import cache_root
from bpcore.models import AutoModel

needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason="OpenVINO is not installed (pip install 'bp-st[openvino]')",
)

TEXTS = [
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "Apple iPhone 12, 128 GB",
    " ".join(["a sentence far longer than the model's limit of 256 tokens"] * 40),
    "Wie geht es dir?",
    "",
]


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One BPCORE_HOME for the module, so the model is exported once for all its tests."""
    return tmp_path_factory.mktemp("openvino-home")


@pytest.fixture
def home(shared_home, monkeypatch):
    monkeypatch.setenv("BPCORE_HOME", str(shared_home))
    return shared_home


@pytest.fixture(scope="module")
def torch_vectors(shared_tv):
    return shared_tv(TEXTS, return_tensor=True)


def exports(home):
    folder = cache_root()
    return (
        sorted(path for path in folder.iterdir() if not path.name.startswith(".")) if folder.exists() else []
    )


def min_cosine(a, b):
    return float(F.cosine_similarity(a, b).min())


@needs_openvino
def test_a_registered_model_gives_the_torch_vectors_through_openvino(home, torch_vectors):
    model = AutoModel.from_pretrained("all-minilm-l6-v2", device="cpu")
    tv = bpcore.TextVectorisation(model.set_backend("openvino"))

    vectors = tv(TEXTS, return_tensor=True)

    assert tv.model.backend == "openvino"
    assert vectors.shape == torch_vectors.shape
    assert min_cosine(vectors, torch_vectors) >= 1 - 1e-4
    # Two engines never agree to the last bit: equal tensors would mean OpenVINO did not run.
    assert not torch.equal(vectors, torch_vectors)
    assert tv(TEXTS[1]) == pytest.approx(vectors[1].tolist(), abs=1e-4)  # one text, one vector
    assert len(exports(home)) == 1


@needs_openvino
def test_the_second_load_reuses_the_cached_export(home, minilm_path, capfd, torch_vectors):
    STModel(str(minilm_path), max_length=256, backend="openvino")  # exported now, or by the test before
    (folder,) = exports(home)
    before = {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.iterdir()}
    capfd.readouterr()

    model = STModel(str(minilm_path), max_length=256, backend="openvino")

    assert "exporting" not in capfd.readouterr().err
    assert exports(home) == [folder]
    assert {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in folder.iterdir()} == before
    assert min_cosine(model.encode(TEXTS), torch_vectors) >= 1 - 1e-4


@needs_openvino
def test_a_damaged_cache_is_exported_again_and_killed_exports_are_cleared(
    home, tmp_path, monkeypatch, minilm_path, capfd, torch_vectors
):
    STModel(str(minilm_path), max_length=256, backend="openvino")
    (folder,) = exports(home)
    # A copy of the cache, damaged: the shared one stays whole for the other tests.
    monkeypatch.setenv("BPCORE_HOME", str(tmp_path / "home"))
    copy = cache_root() / folder.name
    shutil.copytree(folder, copy)
    # One weight byte flipped: the files still parse, and would silently give wrong vectors.
    with (copy / "model.bin").open("r+b") as file:
        file.seek(4096)
        byte = file.read(1)
        file.seek(4096)
        file.write(bytes([byte[0] ^ 0xFF]))
    # What an export killed halfway leaves: a temporary folder named by its (now gone) process.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    leftover = cache_root() / f".{folder.name}.{gone.pid}-half"
    leftover.mkdir()
    (leftover / "model.bin").write_bytes(b"half")
    capfd.readouterr()

    model = STModel(str(minilm_path), max_length=256, backend="openvino")

    err = capfd.readouterr().err
    assert "unusable" in err and "exporting" in err
    assert not leftover.exists()
    assert min_cosine(model.encode(TEXTS), torch_vectors) >= 1 - 1e-4
    STModel(str(minilm_path), max_length=256, backend="openvino")
    assert "exporting" not in capfd.readouterr().err  # the new export replaced the damaged one


@needs_openvino
@pytest.mark.filterwarnings("ignore:the validation split")
def test_finetuning_trains_the_torch_weights_and_the_next_call_exports_them(home, minilm_path, tmp_path):
    model = STModel(str(minilm_path), max_length=256, backend="openvino")
    tv = bpcore.TextVectorisation(model)
    before = tv(TEXTS, return_tensor=True)

    tv.finetune(
        {"texts": ["a cat", "a kitten", "a car", "a truck"], "groups": [0, 0, 1, 1]},
        variant="triplet",
        validation_split=0.0,
        epochs=1,
        early_stopping_epochs=0,
        seed=0,
        configure_optimizers=lambda: torch.optim.AdamW(model.parameters(), lr=1e-3),
    )
    after = tv(TEXTS, return_tensor=True)

    assert model.backend == "openvino"
    assert min_cosine(after, before) < 0.9999  # the finetuned weights answer, not the old export
    model.set_backend("torch")
    assert min_cosine(after, tv(TEXTS, return_tensor=True)) >= 1 - 1e-4
    assert len(exports(home)) == 2  # the finetuned weights have their own export

    # The saved folder is the torch one: the backend is chosen when running, not saved.
    model.set_backend("openvino")
    saved = bpcore.save(model, "finetuned-openvino", path=tmp_path / "saved")
    assert not [path for path in saved.rglob("*") if path.suffix == ".xml"]
    assert bpcore.load(saved).backend == "torch"


def test_an_unknown_backend_is_refused(minilm_path):
    with pytest.raises(bpcore.InputError, match="torch, openvino") as caught:
        STModel(str(minilm_path), backend="onnx")
    assert caught.value.field == "backend"


def test_without_openvino_the_error_names_the_extra(run_python, minilm_path, tmp_path):
    code = f"""
import sys
sys.modules["openvino"] = None  # as if not installed
import bpcore
from bp_st import STModel
try:
    STModel({str(minilm_path)!r}, backend="openvino")
except bpcore.ModelLoadError as error:
    print("ERROR", error)
tv = bpcore.TextVectorisation("all-minilm-l6-v2")  # the torch path needs no OpenVINO
print("VECTOR", len(tv("still works")))
"""
    result = run_python(code, BPCORE_HOME=str(tmp_path), HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR backend='openvino' needs OpenVINO" in result.stdout
    assert "pip install 'bp-st[openvino]'" in result.stdout
    assert "VECTOR 384" in result.stdout
