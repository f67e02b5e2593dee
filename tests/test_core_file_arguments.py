"""Constructor arguments declared as files travel with a saved model: no save_files/from_saved to write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_models import VocabModel

import bpcore
from bpcore.testing import Candidate, check_model

TEXTS = ["the cat sat", "a dog ran far", "unknown words only"]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    vocab = tmp_path / "user-files" / "vocab.txt"
    vocab.parent.mkdir()
    vocab.write_text("cat sat dog ran far the")
    stop = tmp_path / "user-files" / "stop"
    stop.mkdir()
    (stop / "words.txt").write_text("the a")
    return vocab, stop


@pytest.fixture
def registered(register_models):
    register_models(name="vocab-model", factory="tiny_models:VocabModel", tasks=["text-vectorisation"])


def test_saved_then_loaded_without_the_original_files(files, registered, tmp_path):
    vocab, stop = files
    model = VocabModel(str(vocab), stop_words=str(stop), name="vocab-model")
    before = model({"text": TEXTS})
    folder = bpcore.save(model, path=tmp_path / "saved")
    shutil.rmtree(vocab.parent)  # the user's files are gone: the saved folder carries its own
    loaded = bpcore.load(folder)
    assert loaded({"text": TEXTS}) == before
    config = json.loads((Path(folder) / "config.json").read_text())
    saved = json.dumps(config)
    assert "user-files" not in saved  # no path of the machine it was saved on
    assert Path(loaded.init_arguments["vocab"]).parent.parent == Path(folder).resolve()


def test_a_file_argument_that_does_not_exist_is_named(registered, tmp_path):
    missing = tmp_path / "gone.txt"
    missing.write_text("cat")
    model = VocabModel(str(missing))
    missing.unlink()
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.save(model, name="vocab-model", path=tmp_path / "saved")
    assert caught.value.problems[0][0] == "vocab"


@pytest.mark.parametrize(
    "files_entry, reason",
    [
        ({"vocab": "../../etc/passwd"}, "outside"),
        ({"vocab": "files/missing.txt"}, "missing"),
        ({"dim": "files/vocab.txt"}, "files must map"),
    ],
)
def test_a_saved_config_cannot_point_a_file_argument_elsewhere(
    files, registered, tmp_path, files_entry, reason
):
    vocab, stop = files
    folder = Path(bpcore.save(VocabModel(str(vocab)), name="vocab-model", path=tmp_path / "saved"))
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    model_config = next(value for value in config.values() if isinstance(value, dict) and "files" in value)
    model_config["files"] = files_entry
    config_path.write_text(json.dumps(config))
    with pytest.raises(bpcore.ModelLoadError):
        bpcore.load(folder)


def test_the_conformance_kit_passes_a_model_with_file_arguments(files, registered):
    vocab, stop = files
    candidate = Candidate(
        lambda: VocabModel(str(vocab), stop_words=str(stop), name="vocab-model"),
        tasks=["text-vectorisation"],
        name="vocab-model",
    )
    check_model(candidate)
