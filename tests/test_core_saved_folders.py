"""A saved folder hands a model only what lies inside it; damaged folders are refused, never half-loaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from tiny_models import TinyTextModel

import bpcore
from bpcore.testing.folders import edit_model_config, reason

TEXTS = ["a first text", "and a second one"]


@pytest.fixture
def saved(tmp_path, seeded) -> Path:
    return Path(
        bpcore.save(TinyTextModel(dim=16, name="saved-tiny"), path=tmp_path / "models" / "saved-tiny")
    )


# -- the folder object --------------------------------------------------------------------------


def test_a_saved_folder_resolves_only_relative_names_inside_it(saved, tmp_path):
    from bpcore.saved_folder import SavedFolder

    folder = SavedFolder(saved)
    assert folder.file("model.safetensors") == saved.resolve() / "model.safetensors"
    assert Path(folder) == saved.resolve() and os.fspath(folder) == str(saved.resolve())
    (saved / "sub").mkdir()
    (saved / "sub" / "x.json").write_text("{}")
    assert folder.folder("sub").file("x.json") == saved.resolve() / "sub" / "x.json"
    (tmp_path / "outside.json").write_text("{}")
    refusals = {
        str(tmp_path / "outside.json"): "absolute path",
        "../../outside.json": "leaves the saved folder",
        "sub/../../x": "leaves the saved folder",
        "": "not a file name",
        5: "not a file name",
        "missing.json": "has no file",
        "sub": "is not a file",
    }
    for name, why in refusals.items():
        with pytest.raises(bpcore.ModelLoadError) as refused:
            folder.file(name)
        assert why in reason(refused.value, tmp_path), name
    with pytest.raises(bpcore.ModelLoadError, match="is not a folder"):
        folder.folder("model.safetensors")
    with pytest.raises(bpcore.ModelLoadError) as refused:
        folder / "../elsewhere"
    assert "leaves the saved folder" in reason(refused.value, tmp_path)


def test_a_symlink_is_refused_even_one_that_points_inside(saved, tmp_path):
    from bpcore.saved_folder import SavedFolder

    (saved / "alias.safetensors").symlink_to(saved / "model.safetensors")
    with pytest.raises(bpcore.ModelLoadError) as refused:
        SavedFolder(saved).file("alias.safetensors")
    assert "passes through a symlink" in reason(refused.value, tmp_path)


def test_folder_file_still_works_and_checks_the_same_way(saved, tmp_path):
    from bpcore.saving import folder_file

    assert folder_file(saved, "model.safetensors") == saved.resolve() / "model.safetensors"
    with pytest.raises(bpcore.ModelLoadError) as refused:
        folder_file(saved, str(saved / "model.safetensors"))
    assert "absolute path" in reason(refused.value, tmp_path)
    with pytest.raises(bpcore.ModelLoadError, match="is not a folder"):
        folder_file(saved, "model.safetensors", kind="folder")


class Recorder(TinyTextModel):
    """Records what ``from_saved`` was handed."""

    handed: list = []

    @classmethod
    def from_saved(cls, directory, config, device=None):
        cls.handed.append(directory)
        return super().from_saved(directory, config, device=device)


def test_load_hands_from_saved_a_saved_folder(tmp_path, seeded):
    from bpcore.saved_folder import SavedFolder

    folder = bpcore.save(Recorder(name="recorder"), path=tmp_path / "recorder")
    bpcore.load(folder, trust_code=True)
    assert isinstance(Recorder.handed[-1], SavedFolder)


# -- what a saved folder must hold ----------------------------------------------------------------


def test_a_folder_missing_a_file_the_save_wrote_is_refused(saved, tmp_path):
    config = json.loads((saved / "config.json").read_text())
    assert sorted(config["files"]) == ["model.safetensors", "requirements.txt"]
    (saved / "requirements.txt").unlink()  # not read by the load, but the folder is incomplete
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert "has no file 'requirements.txt'" in reason(refused.value, tmp_path)


@pytest.mark.parametrize(
    "changes",
    [{"files": "model.safetensors"}, {"format_version": 10**9}],
    ids=["files-not-a-list", "version"],
)
def test_the_file_list_and_the_format_version_are_checked(saved, changes):
    config = json.loads((saved / "config.json").read_text())
    config.update(changes)
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.ModelLoadError, match="not a valid bpcore model config"):
        bpcore.load(saved)


def test_weights_of_the_wrong_dtype_are_refused(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    weights = load_file(saved / "model.safetensors")
    save_file({key: value.to(torch.int64) for key, value in weights.items()}, saved / "model.safetensors")
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert "wrong dtype" in reason(refused.value, tmp_path)


def test_a_size_the_weights_do_not_have_is_refused_before_anything_is_built(saved, tmp_path):
    # 10**9 columns of a 4096-row embedding would be 16 TB: the meta-device probe refuses it unbuilt.
    edit_model_config(saved, init_arguments={"dim": 10**9, "name": "saved-tiny"})
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert "does not match the weights" in reason(refused.value, tmp_path)


class Sized(TinyTextModel):
    """A model whose constructor bounds a size it uses only at call time."""

    def __init__(
        self, dim=None, size: int = 4, name=None, description=None, tasks=None, details=None, device=None
    ):
        if not 1 <= size <= 64:
            raise bpcore.InputError(f"must be from 1 to 64, got {size}", field="size")
        super().__init__(dim, name, description, tasks, details, device)
        self.size = size


def test_a_value_a_constructor_refuses_makes_the_folder_a_load_error(tmp_path, seeded):
    folder = bpcore.save(Sized(size=8, name="sized"), path=tmp_path / "sized")
    edit_model_config(folder, init_arguments={"size": 10**9, "name": "sized"})
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(folder, trust_code=True)
    assert "size: must be from 1 to 64" in reason(refused.value, tmp_path)
