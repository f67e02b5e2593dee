"""Save and load: folder contents, identical outputs after a round trip, pickles only on request."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
import torch
from tiny_models import PlainCallableModel, TinyImageModel, TinyTextModel, TinyTextToTextModel

import bpcore
from bpcore.models import AutoModel

TEXTS = ["iPhone 12 128GB", "Apple iPhone 12, 128 GB", "a bag of flour"]
CLASSIFICATION = {
    "texts": [
        "the senate passed a law",
        "the vote in parliament",
        "a physics experiment",
        "the lab measured cells",
    ],
    "labels": ["politics", "politics", "science", "science"],
}


def close(first, second) -> bool:
    return torch.allclose(torch.as_tensor(first), torch.as_tensor(second), atol=1e-6)


@pytest.fixture
def tiny_text(seeded) -> TinyTextModel:
    return TinyTextModel(dim=12, name="my-tiny-text")


def test_save_by_name_and_load_by_name(tiny_text, bpcore_home):
    folder = bpcore.save(
        tiny_text, "saved-tiny", description="my vectoriser", details={"trained_on": "nothing"}
    )
    assert Path(folder) == bpcore_home / "saved-tiny"
    loaded = bpcore.load("saved-tiny")
    assert isinstance(loaded, TinyTextModel)
    assert loaded.dim == 12
    assert loaded.name == "saved-tiny"
    assert loaded.description == "my vectoriser"
    assert loaded.details == {"trained_on": "nothing"}
    assert loaded.tasks == ["text-vectorisation", "text-classification"]
    task_input = {"text": TEXTS}
    assert close(
        loaded(task_input, task="text-vectorisation"), tiny_text(task_input, task="text-vectorisation")
    )


def test_save_uses_the_model_name_when_none_is_given(tiny_text, bpcore_home):
    folder = bpcore.save(tiny_text)
    assert Path(folder) == bpcore_home / "my-tiny-text"
    assert bpcore.load("my-tiny-text").name == "my-tiny-text"


def test_save_to_a_path_and_load_by_path(tiny_text, tmp_path):
    target = tmp_path / "somewhere" / "model-folder"
    folder = bpcore.save(tiny_text, path=target)
    assert Path(folder) == target
    loaded = bpcore.load(target)
    assert close(loaded({"text": TEXTS}), tiny_text({"text": TEXTS}))
    assert close(bpcore.load(str(target))({"text": TEXTS}), tiny_text({"text": TEXTS}))


def test_folder_contents(tiny_text, tmp_path):
    folder = Path(
        bpcore.save(tiny_text, "content-check", description="described", path=tmp_path / "content-check")
    )
    assert {path.name for path in folder.iterdir()} == {
        "config.json",
        "model.safetensors",
        "requirements.txt",
    }
    config = json.loads((folder / "config.json").read_text())
    assert config["name"] == "content-check"
    assert config["description"] == "described"
    assert config["tasks"] == ["text-vectorisation", "text-classification"]
    assert config["details"] == {}
    assert config["class"] == "tiny_models:TinyTextModel"
    assert config["model"]["init_arguments"]["dim"] == 12
    requirements = (folder / "requirements.txt").read_text().split()
    pins = dict(line.split("==") for line in requirements)
    assert pins["bpcore"] == bpcore.__version__
    assert pins["torch"] == importlib.metadata.version("torch")
    # No leftovers of the atomic save next to the folder.
    assert [path.name for path in folder.parent.iterdir()] == ["content-check"]


def test_saving_again_replaces_the_model(tiny_text, seeded):
    bpcore.save(tiny_text, "replaced")
    other = TinyTextModel(dim=12)
    bpcore.save(other, "replaced")
    assert close(bpcore.load("replaced")({"text": TEXTS}), other({"text": TEXTS}))
    with pytest.raises(bpcore.InputError, match="exists"):
        bpcore.save(tiny_text, "replaced", overwrite=False)


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
def test_task_save_round_trips_finetuned_classification(tiny_plugin, seeded, tmp_path):
    tc = bpcore.TextClassification("tiny-text")
    tc.finetune(CLASSIFICATION, epochs=5, seed=0)
    expected = tc(CLASSIFICATION["texts"])
    folder = tc.save("finetuned-tc", description="politics or science")
    loaded = bpcore.load("finetuned-tc")
    assert loaded.labels == ["politics", "science"]
    again = bpcore.TextClassification(loaded)(CLASSIFICATION["texts"])
    for before, after in zip(expected, again):
        assert before.keys() == after.keys()
        assert close(list(before.values()), list(after.values()))
    # A saved model is usable by name or path wherever a model name is.
    assert bpcore.TextClassification("finetuned-tc")(CLASSIFICATION["texts"][0]) == pytest.approx(expected[0])
    assert bpcore.TextClassification(str(folder))(CLASSIFICATION["texts"][0]) == pytest.approx(expected[0])
    assert AutoModel.from_pretrained("finetuned-tc").labels == ["politics", "science"]


def test_text_vectorisation_from_a_saved_path(tiny_text, tmp_path):
    folder = bpcore.save(tiny_text, path=tmp_path / "vectoriser")
    tv = bpcore.TextVectorisation(str(folder))
    assert close(tv(TEXTS), tiny_text({"text": TEXTS}))
    assert close(tv(TEXTS[0]), tiny_text({"text": TEXTS[:1]})[0])


def test_image_and_text_to_text_models_round_trip(seeded, image_files, tmp_path):
    image_model = TinyImageModel()
    bpcore.save(image_model, path=tmp_path / "image")
    images = [str(image_files["red"]), str(image_files["blue"])]
    iv = bpcore.ImageVectorisation(image_model)
    assert close(bpcore.ImageVectorisation(bpcore.load(tmp_path / "image"))(images), iv(images))

    t2t = TinyTextToTextModel()
    bpcore.save(t2t, path=tmp_path / "t2t")
    summarise = bpcore.Summarisation(t2t)
    assert bpcore.Summarisation(bpcore.load(tmp_path / "t2t"))(TEXTS) == summarise(TEXTS)


def test_loading_onto_a_device(tiny_text, tmp_path):
    bpcore.save(tiny_text, path=tmp_path / "on-cpu")
    loaded = bpcore.load(tmp_path / "on-cpu", device="cpu")
    assert loaded.device == torch.device("cpu")


# -- pickles ------------------------------------------------------------------------------------


def test_pickle_option_writes_model_bin_and_safe_loading_ignores_it(tiny_text, tmp_path):
    folder = Path(bpcore.save(tiny_text, path=tmp_path / "with-pickle", pickle=True))
    assert (folder / "model.bin").is_file() and (folder / "model.safetensors").is_file()
    # The weights are there: loading needs no trust.
    assert close(bpcore.load(folder)({"text": TEXTS}), tiny_text({"text": TEXTS}))


def test_pickle_only_folder_needs_trust(tmp_path):
    model = PlainCallableModel(scale=3.0)
    with pytest.raises(bpcore.InputError):
        bpcore.save(model, path=tmp_path / "plain")
    folder = Path(bpcore.save(model, path=tmp_path / "plain", pickle=True))
    assert (folder / "model.bin").is_file() and not (folder / "model.safetensors").exists()
    with pytest.raises(bpcore.UnsafeLoadError, match="trust_pickle"):
        bpcore.load(folder)
    assert issubclass(bpcore.UnsafeLoadError, bpcore.BpcoreError)
    loaded = bpcore.load(folder, trust_pickle=True)
    assert isinstance(loaded, PlainCallableModel) and loaded.scale == 3.0
    assert bpcore.TextVectorisation(loaded)("two words") == [27.0, 1.0]


def test_a_task_refuses_a_pickle_only_model_by_name(tmp_path):
    bpcore.save(PlainCallableModel(), name="pickled-only", pickle=True)
    with pytest.raises(bpcore.UnsafeLoadError):
        bpcore.TextVectorisation("pickled-only")


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Bad Name", "ab", "with space", "UPPER", "x" * 101, "dots.are.bad", "../escape"]
)
def test_invalid_names_are_rejected(tiny_text, name, bpcore_home):
    with pytest.raises(bpcore.InputError, match="name"):
        bpcore.save(tiny_text, name)
    assert not bpcore_home.exists() or not any(bpcore_home.iterdir())


def test_task_save_rejects_invalid_names(tiny_plugin):
    with pytest.raises(bpcore.InputError):
        bpcore.TextVectorisation("tiny-text").save("Not Valid")


def test_save_needs_a_name_or_path():
    class Nameless(TinyTextModel):
        pass

    with pytest.raises(bpcore.InputError, match="name"):
        bpcore.save(Nameless(name=None))


def test_non_json_details_are_rejected(tiny_text):
    with pytest.raises(bpcore.InputError, match="details"):
        bpcore.save(tiny_text, "bad-details", details={"when": object()})


def test_loading_a_missing_model():
    with pytest.raises(bpcore.ModelNotFoundError, match="never-saved"):
        bpcore.load("never-saved")
    with pytest.raises(bpcore.ModelNotFoundError):
        bpcore.TextVectorisation("never-saved")


@pytest.mark.parametrize(
    "config",
    [
        "{not json",
        "[1, 2, 3]",
        '{"name": "x"}',
    ],
    ids=["invalid-json", "not-an-object", "no-class"],
)
def test_malformed_config_is_a_load_error(tiny_text, tmp_path, config):
    folder = Path(bpcore.save(tiny_text, path=tmp_path / "broken"))
    (folder / "config.json").write_text(config)
    with pytest.raises(bpcore.ModelLoadError):
        bpcore.load(folder)


@pytest.mark.parametrize("class_path", ["tiny_models:NoSuchClass", "json:dumps"])
def test_a_class_no_plugin_registers_is_refused_and_with_trust_code_still_checked(
    tiny_text, tmp_path, class_path
):
    folder = Path(bpcore.save(tiny_text, path=tmp_path / "unregistered"))
    config = json.loads((folder / "config.json").read_text())
    config["class"] = class_path
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.UnsafeLoadError, match="no installed plugin registers"):
        bpcore.load(folder)
    with pytest.raises(bpcore.ModelLoadError):
        bpcore.load(folder, trust_code=True)


def test_config_without_rebuild_information_is_a_load_error(tiny_text, tmp_path):
    folder = Path(bpcore.save(tiny_text, path=tmp_path / "broken"))
    config = json.loads((folder / "config.json").read_text())
    config["model"] = {"weights": "model.safetensors"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.ModelLoadError):
        bpcore.load(folder)


def test_missing_weights_are_a_load_error(tiny_text, tmp_path):
    folder = Path(bpcore.save(tiny_text, path=tmp_path / "no-weights"))
    (folder / "model.safetensors").unlink()
    with pytest.raises(bpcore.ModelLoadError, match="safetensors"):
        bpcore.load(folder)


def test_weights_that_do_not_fit_are_a_load_error(tiny_text, tmp_path):
    folder = Path(bpcore.save(tiny_text, path=tmp_path / "misfit"))
    config = json.loads((folder / "config.json").read_text())
    config["model"]["init_arguments"]["dim"] = 5
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.ModelLoadError):
        bpcore.load(folder)
