"""Finetuning data as one sub-folder per label: bpcore.folders.images_and_labels, through the task."""

from __future__ import annotations

import warnings

import pytest
from tiny_effnet import write_label_folders

import bpcore
from bpcore.folders import images_and_labels


def test_sub_folder_names_become_labels(tmp_path):
    root = write_label_folders(tmp_path / "photos", per_label=2)
    (root / "red" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    (root / "green" / "more").mkdir()
    (root / "green" / "0.png").rename(root / "green" / "more" / "0.png")
    images, labels = images_and_labels(root)
    assert labels == ["blue", "blue", "green", "green", "red", "red"]
    assert [path.split("/")[-2:] for path in images][:4] == [
        ["blue", "0.png"],
        ["blue", "1.png"],
        ["green", "1.png"],
        ["more", "0.png"],
    ]


def test_folder_errors_name_the_field(tmp_path):
    with pytest.raises(bpcore.InputError, match="params.images") as caught:
        images_and_labels(tmp_path / "missing")
    assert "not a folder" in str(caught.value)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(bpcore.InputError, match="no images"):
        images_and_labels(tmp_path / "empty")
    root = write_label_folders(tmp_path / "loose", per_label=1)
    (root / "red" / "0.png").rename(root / "stray.png")
    with pytest.raises(bpcore.InputError, match="no label"):
        images_and_labels(root)


def test_a_folder_finetunes_the_model(tmp_path, tiny_effnet):
    root = write_label_folders(tmp_path / "photos", per_label=3)
    ic = bpcore.ImageClassification(tiny_effnet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ic.finetune({"images": str(root)}, epochs=1, batch_size=9)
    assert set(ic(images_and_labels(root)[0][:1])[0]) == {"red", "green", "blue"}
    with pytest.raises(bpcore.InputError, match=r"params\.images"):
        ic.finetune({"images": str(tmp_path / "missing")})
