"""What bp-effnet registers: the eight models and their details, cheap listing, exports, offline errors."""

from __future__ import annotations

import bpcore
from bpcore.models import AutoModel
from bpcore.plugins.registry import get_registry
from bpcore.testing.fresh_process import imported_by_listing, load_errors_offline

TASK = "image-classification"
NAMES = [f"efficientnet-b{size}" for size in range(8)]


def test_the_eight_efficientnets_are_listed_with_their_details():
    models = AutoModel.list_models(task=TASK, return_dict=True)
    assert set(NAMES) <= set(models)
    for name in NAMES:
        row = models[name]
        assert row["finetunable"] == [TASK]
        assert row["default_for"] == []  # zero-shot clip is the task's default, not EfficientNet
        assert row["details"]["timm_model"] == f"tf_efficientnet_b{name[-1]}.aa_in1k"
        assert row["details"]["credits"]
    assert models["efficientnet-b0"]["details"]["num_parameters"] == 5_288_548
    assert models["efficientnet-b0"]["details"]["input_resolution"] == 224
    assert models["efficientnet-b7"]["details"]["input_resolution"] == 600
    assert (
        models["efficientnet-b0"]["details"]["imagenet_top1"]
        < models["efficientnet-b7"]["details"]["imagenet_top1"]
    )
    assert not [problem for problem in get_registry().problems if problem.plugin == "effnet"]


def test_the_listed_parameter_counts_are_timms():
    import timm

    details = AutoModel.list_models(task=TASK, return_dict=True)["efficientnet-b1"]["details"]
    network = timm.create_model(details["timm_model"], pretrained=False)
    assert sum(parameter.numel() for parameter in network.parameters()) == details["num_parameters"]


def test_listing_models_imports_neither_torch_nor_timm():
    assert imported_by_listing("bp_effnet", ["torch", "timm", "torchvision"]) == []


def test_efficientnet_is_exported_lazily_and_through_bpcore_models():
    import bp_effnet
    import bp_effnet.model
    from bpcore.models import EfficientNet

    assert EfficientNet is bp_effnet.model.EfficientNet is bp_effnet.EfficientNet
    assert sorted(row["name"] for row in EfficientNet.list_models()) == NAMES


def test_a_registered_name_loads_through_the_public_path(registered_tiny_effnet):
    from tiny_effnet import single_label_data

    ic = bpcore.ImageClassification(registered_tiny_effnet)
    assert ic.model.name == registered_tiny_effnet
    answer = ic(single_label_data(1)[0][0], top_k=3)
    assert len(answer) == 3


def test_offline_loading_by_name_raises_model_load_error_naming_it():
    by_name, direct = load_errors_offline(
        ['bpcore.ImageClassification("efficientnet-b0")', 'bpcore.models.EfficientNet("efficientnet-b3")']
    )
    assert by_name.startswith("ModelLoadError") and "'efficientnet-b0'" in by_name
    assert direct.startswith("ModelLoadError") and "efficientnet-b3" in direct
    assert "local weights file" in by_name and "pretrained=" in by_name
