"""What bp-clip registers: names, defaults, details, lazy imports, the CLIP export, loading errors."""

from __future__ import annotations

import json

import pytest

import bpcore
from bpcore.models import AutoModel
from bpcore.plugins.registry import get_registry
from bpcore.testing.fresh_process import imported_by_listing, load_errors_offline

IMAGE_TASKS = ["image-classification", "image-vectorisation", "image-text-vectorisation"]
NAMES = {"clip": "ViT-B-32", "clip-rn50": "RN50", "clip-rn101": "RN101", "clip-rn50x4": "RN50x4"}


def test_clip_is_the_default_for_the_image_tasks_and_the_spec_architectures_are_listed():
    registry = get_registry()
    for task in IMAGE_TASKS:
        assert registry.default_for(task).name == "clip"
    models = AutoModel.list_models(return_dict=True)
    for name, architecture in NAMES.items():
        row = models[name]
        assert row["plugin"] == "clip"
        assert set(row["finetunable"]) == set(IMAGE_TASKS) | {"text-vectorisation"}
        assert row["details"]["architecture"] == architecture
    assert models["clip"]["details"]["num_parameters"] == 151_277_313
    assert models["clip"]["details"]["vector_size"] == 512
    assert registry.resolve("clip-vit-b-32", task="image-vectorisation").name == "clip"
    assert not [problem for problem in registry.problems if problem.plugin == "clip"]


def test_clip_is_exported_through_bpcore_models():
    import bp_clip
    import bp_clip.model
    from bpcore.models import CLIP

    assert CLIP is bp_clip.model.CLIP is bp_clip.CLIP
    assert sorted(row["name"] for row in CLIP.list_models()) == sorted(NAMES)


def test_listing_models_imports_neither_torch_nor_open_clip():
    assert imported_by_listing("bp_clip", ["torch", "open_clip", "torchvision"]) == []


def test_the_spec_names_are_open_clip_architectures():
    from bp_clip.loading import architecture_name

    assert architecture_name("ViT-B/32") == "ViT-B-32"
    for name in ("RN50", "RN101", "RN50x4"):
        assert architecture_name(name) == name
    with pytest.raises(bpcore.ModelLoadError, match="ViT-B-32"):
        architecture_name("ViT-Q/99")


def test_offline_a_hub_tag_fails_naming_the_model_and_asking_for_a_local_checkpoint():
    lines = load_errors_offline(
        [
            'bpcore.ImageClassification("clip")',
            'bpcore.models.CLIP("ViT-B/32", name="my-clip")',
            'bpcore.ImageVectorisation("clip-rn50")',
        ]
    )
    assert all(line.startswith("ModelLoadError") for line in lines), lines
    by_name, direct, rn50 = lines
    assert "'clip'" in by_name and "'my-clip'" in direct and "'clip-rn50'" in rn50
    assert all("local checkpoint" in line for line in lines)


def test_a_missing_checkpoint_or_a_bad_config_is_a_model_load_error(tiny_files, tmp_path):
    from bp_clip.model import CLIP

    config_path, _ = tiny_files
    with pytest.raises(bpcore.ModelLoadError, match="local checkpoint"):
        CLIP(model_path=config_path, pretrained=str(tmp_path / "missing.safetensors"))
    not_a_config = tmp_path / "other.json"
    not_a_config.write_text(json.dumps({"hello": 1}))
    with pytest.raises(bpcore.ModelLoadError, match="embed_dim"):
        CLIP(model_path=not_a_config, pretrained=None)
    wrong_weights = tmp_path / "wrong.safetensors"
    import torch
    from safetensors.torch import save_file

    save_file({"nothing": torch.zeros(1)}, str(wrong_weights))
    with pytest.raises(bpcore.ModelLoadError, match="does not fit"):
        CLIP(model_path=config_path, pretrained=str(wrong_weights))
