"""A plain model folder is a model: plugins recognise their formats (``register_folder_formats``), the core loads them.

The folders here are "tiny-format" folders (``tiny_formats.py``): no bpcore ``config.json``, so
only a plugin's recogniser makes them a model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_formats import MARKER, FormatPlugin, write_tiny_format
from tiny_models import TinyTextModel

import bpcore
from bpcore.models import AutoModel
from bpcore.plugins.registry import get_registry

TEXTS = ["a tiny text", "another one"]


@pytest.fixture
def tiny_folder(tmp_path: Path, seeded: None) -> tuple[TinyTextModel, Path]:
    model = TinyTextModel(name="tiny-text")
    return model, write_tiny_format(model, tmp_path / "tiny-model")


@pytest.fixture
def formats():
    """Register format plugins for one test: ``formats(FormatPlugin(...), ...)``."""
    names = []

    def register(*plugins: FormatPlugin) -> None:
        for index, plugin in enumerate(plugins):
            names.append(bpcore.register_plugin(plugin, name=f"format-{len(names)}-{index}"))

    yield register
    for name in names:
        bpcore.unregister_plugin(name)


def test_a_recognised_folder_answers_as_the_model_it_holds(tiny_folder, formats):
    model, folder = tiny_folder
    formats(FormatPlugin("decline", name="other"), FormatPlugin("recognise_tiny"))
    task = bpcore.TextVectorisation(str(folder))
    assert isinstance(task.model, TinyTextModel)
    assert torch.allclose(torch.tensor(task(TEXTS)), model({"text": TEXTS}, return_tensor=True))
    loaded = bpcore.load(folder)
    assert loaded.name == "tiny-model"  # named after its folder
    assert loaded.tasks == ["text-vectorisation", "text-classification"]
    assert isinstance(AutoModel.from_pretrained(str(folder)), TinyTextModel)


def test_the_folder_formats_are_registered_as_metadata(formats):
    formats(FormatPlugin("recognise_tiny", description="a tiny-format folder"))
    [found] = [item for item in get_registry().folder_formats if item.name == "tiny-format"]
    assert found.recognise == "tiny_formats:recognise_tiny"
    assert found.description == "a tiny-format folder"


def test_bpcore_plugins_lists_the_formats(formats, capsys):
    import json

    from bpcore.cli import main

    formats(FormatPlugin("recognise_tiny", description="a tiny-format folder"))
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert ["a tiny-format folder"] in [row["folder_formats"] for row in rows]
    assert main(["plugins"]) == 0
    assert "loads: a tiny-format folder" in capsys.readouterr().out


def test_no_recogniser_gives_an_error_naming_the_folder_and_the_formats(tiny_folder, formats):
    _, folder = tiny_folder
    formats(FormatPlugin("decline", description="a folder of the declining kind"))
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.TextVectorisation(str(folder))
    message = str(refused.value)
    assert str(folder) in message
    assert "bpcore.save" in message and "a folder of the declining kind" in message
    assert "model_path" not in message


def test_a_folder_with_another_librarys_config_says_so(tmp_path, formats):
    formats(FormatPlugin("decline"))
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(bpcore.ModelLoadError, match="not a bpcore model config"):
        bpcore.load(folder)


def test_the_task_decides_between_two_plugins_claiming_a_folder(tiny_folder, formats):
    _, folder = tiny_folder
    (folder / MARKER).write_text((folder / MARKER).read_text().replace('"text-classification"', '"emotion"'))
    formats(
        FormatPlugin("recognise_tiny"), FormatPlugin("recognise_tiny_for_classification", name="classifier")
    )
    assert bpcore.TextVectorisation(str(folder)).model.tasks == ["text-vectorisation", "emotion"]
    classifier = bpcore.TextClassification(str(folder)).model
    assert classifier.tasks == ["text-classification"]
    assert (
        classifier.name == "tiny-classifier" and classifier.description == "read by the classification format"
    )
    with pytest.raises(bpcore.ModelLoadError, match="several plugins.*name the task"):
        bpcore.load(folder)
    assert bpcore.load(folder, task="text-classification").name == "tiny-classifier"


def test_two_plugins_serving_the_task_are_a_clear_error(tiny_folder, formats):
    _, folder = tiny_folder
    formats(
        FormatPlugin("recognise_tiny"), FormatPlugin("recognise_tiny_for_classification", name="classifier")
    )
    with pytest.raises(
        bpcore.ModelLoadError, match=r"several plugins \(format-.*/tiny-format .*format-.*/classifier"
    ):
        bpcore.TextClassification(str(folder))


def test_a_recognised_model_that_does_not_serve_the_task_is_refused(tiny_folder, formats):
    _, folder = tiny_folder
    formats(FormatPlugin("recognise_tiny_for_classification", name="classifier"))
    with pytest.raises(
        bpcore.TaskNotSupportedError, match="for \\['text-classification'\\], not 'text-vectorisation'"
    ):
        bpcore.TextVectorisation(str(folder))


def test_a_broken_recogniser_is_reported_never_fatal(tiny_folder, formats, tmp_path):
    _, folder = tiny_folder
    formats(FormatPlugin("crash", name="crashing"), FormatPlugin("recognise_tiny"))
    assert isinstance(bpcore.load(folder), TinyTextModel)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        bpcore.ModelLoadError, match="crashing failed \\(RuntimeError: this recogniser is broken\\)"
    ):
        bpcore.load(empty)


def test_a_plugin_refusing_its_own_folder_says_why(tiny_folder, formats):
    _, folder = tiny_folder
    formats(FormatPlugin("refuse"))
    with pytest.raises(bpcore.ModelLoadError, match="of a version this plugin cannot read"):
        bpcore.load(folder)


def test_the_class_must_be_one_a_plugin_registers(tiny_folder, formats):
    _, folder = tiny_folder
    formats(FormatPlugin("unregistered_class"))
    with pytest.raises(bpcore.UnsafeLoadError, match="no installed plugin registers"):
        bpcore.load(folder)


def test_a_recognised_folder_is_checked_like_a_saved_one(tiny_folder, formats):
    _, folder = tiny_folder
    formats(FormatPlugin("recognise_tiny"))
    (folder / "elsewhere").symlink_to("/etc")
    with pytest.raises(bpcore.ModelLoadError, match="is a symlink"):
        bpcore.load(folder)


def test_a_path_that_does_not_exist_is_still_no_model(formats):
    formats(FormatPlugin("recognise_tiny"))
    with pytest.raises(bpcore.ModelNotFoundError):
        bpcore.TextVectorisation("/no/such/folder")


def test_a_malformed_answer_is_the_plugins_bug(tiny_folder, formats, monkeypatch):
    import tiny_formats

    _, folder = tiny_folder
    monkeypatch.setattr(tiny_formats, "decline", lambda path, task: {"class": "x", "tasks": ["telepathy"]})
    formats(FormatPlugin("decline", name="sloppy"))
    with pytest.raises(bpcore.ModelLoadError, match="sloppy failed .*class 'x'.*tasks \\['telepathy'\\]"):
        bpcore.load(folder)
