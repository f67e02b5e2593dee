"""A plain OpenCLIP folder is a model: a task given its path answers as CLIP built on its files.

Also the spec's helper methods (6.1.4: ``image_classification``, ``image_vectorisation``...).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from tiny_clip import make_image

import bpcore
from bp_clip.model import CLIP

IMAGES = [make_image("red"), make_image("blue", "stripes", seed=1)]
TEXTS = ["a red square", "blue stripes on a wall"]
LABELS = ["red", "blue", "green"]


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model written as open_clip's ``save_for_hf`` writes it (its config file and safetensors weights).

    The tiny model keeps open_clip's own tokenizer, which has no ``save_pretrained``, so the
    files are written with the two functions ``save_for_hf`` calls for them.
    """
    from open_clip.push_to_hf_hub import save_config_for_hf
    from safetensors.torch import save_file
    from tiny_clip import build_tiny_clip

    model = build_tiny_clip(tmp_path_factory.mktemp("tiny-source"))
    folder = tmp_path_factory.mktemp("hub") / "tiny-openclip"
    folder.mkdir()
    save_file(
        {key: value.contiguous() for key, value in model.model.state_dict().items()},
        str(folder / "open_clip_model.safetensors"),
    )
    save_config_for_hf(model.model, folder / "open_clip_config.json", model.model_config)
    return folder


def _same_answers(by_path: CLIP, explicit: CLIP) -> None:
    ic_path, ic_explicit = bpcore.ImageClassification(by_path), bpcore.ImageClassification(explicit)
    assert ic_path(IMAGES, [LABELS, LABELS]) == ic_explicit(IMAGES, [LABELS, LABELS])
    iv = bpcore.ImageVectorisation(by_path)(IMAGES, return_tensor=True)
    assert torch.allclose(iv, bpcore.ImageVectorisation(explicit)(IMAGES, return_tensor=True), atol=1e-6)
    tv = bpcore.TextVectorisation(by_path)(TEXTS, return_tensor=True)
    assert torch.allclose(tv, bpcore.TextVectorisation(explicit)(TEXTS, return_tensor=True), atol=1e-6)


def test_a_save_for_hf_folder_is_clip(hub_folder):
    ic = bpcore.ImageClassification(str(hub_folder))
    assert type(ic.model) is CLIP and ic.model.name == "tiny-openclip"
    explicit = CLIP(
        model_path=str(hub_folder / "open_clip_config.json"),
        pretrained=str(hub_folder / "open_clip_model.safetensors"),
    )
    _same_answers(ic.model, explicit)


def test_a_config_and_checkpoint_folder_is_clip(tiny_files, tmp_path):
    config, checkpoint = tiny_files
    folder = tmp_path / "config-and-checkpoint"
    folder.mkdir()
    shutil.copy(config, folder)
    shutil.copy(checkpoint, folder)
    model = bpcore.load(folder)
    assert type(model) is CLIP
    _same_answers(model, CLIP(model_path=str(config), pretrained=str(checkpoint)))


def test_pickled_weights_only_are_refused_by_name(hub_folder, tmp_path):
    folder = Path(shutil.copytree(hub_folder, tmp_path / "pickled"))
    (folder / "open_clip_model.safetensors").rename(folder / "open_clip_pytorch_model.bin")
    with pytest.raises(bpcore.ModelLoadError, match="pickled weights only"):
        bpcore.ImageVectorisation(str(folder))


def test_a_config_that_does_not_fit_its_weights_is_refused(hub_folder, tmp_path):
    import json

    folder = Path(shutil.copytree(hub_folder, tmp_path / "misfit"))
    config = json.loads((folder / "open_clip_config.json").read_text())
    config["model_cfg"]["embed_dim"] = 32
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.ModelLoadError):
        bpcore.ImageVectorisation(str(folder))


# -- the spec's helper methods ------------------------------------------------------------------------


def test_the_spec_helpers_answer_as_the_tasks(shared_clip):
    ic = bpcore.ImageClassification(shared_clip)
    assert shared_clip.image_classification(IMAGES[0], LABELS) == ic(IMAGES[0], LABELS)
    assert shared_clip.image_classification(IMAGES, LABELS, top_k=2) == ic(IMAGES, [LABELS, LABELS], top_k=2)
    single = shared_clip.image_vectorisation(IMAGES[0])
    assert torch.allclose(
        single, bpcore.ImageVectorisation(shared_clip)(IMAGES[0], return_tensor=True), atol=1e-6
    )
    texts = shared_clip.text_vectorisation(TEXTS)
    assert torch.allclose(texts, bpcore.TextVectorisation(shared_clip)(TEXTS, return_tensor=True), atol=1e-6)
    both = shared_clip.image_text_vectorisation(IMAGES, TEXTS)
    expected = bpcore.ImageTextVectorisation(shared_clip)(IMAGES, TEXTS, return_tensor=True)
    assert torch.allclose(both, expected, atol=1e-6)
