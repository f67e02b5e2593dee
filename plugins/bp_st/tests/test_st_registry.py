"""What bp-st registers: listing without torch, names, aliases, the STModel export, offline errors."""

from __future__ import annotations

import pytest

import bpcore
import bpcore.cli
from bpcore.models import AutoModel
from bpcore.plugins.registry import get_registry
from bpcore.testing.fresh_process import imported_by_listing, load_errors_offline

TASK = "text-vectorisation"
HUB_MODELS = {
    "msmarco-distilroberta-base-v2": "sentence-transformers/msmarco-distilroberta-base-v2",
    "distiluse-base-multilingual-cased-v2": "sentence-transformers/distiluse-base-multilingual-cased-v2",
}


def test_list_models_shows_the_three_models_and_their_aliases(capsys):
    assert bpcore.cli.main(["list-models", "--task", TASK]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}

    assert "[default: text-vectorisation]" in lines["all-minilm-l6-v2"]
    assert "english-small" in lines["all-minilm-l6-v2"]
    assert "english-base" in lines["msmarco-distilroberta-base-v2"]
    assert "english," in lines["msmarco-distilroberta-base-v2"]
    assert "multilingual-base" in lines["distiluse-base-multilingual-cased-v2"]
    assert "multilingual," in lines["distiluse-base-multilingual-cased-v2"]


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("english-small", "all-minilm-l6-v2"),
        ("english-base", "msmarco-distilroberta-base-v2"),
        ("english", "msmarco-distilroberta-base-v2"),
        ("multilingual-base", "distiluse-base-multilingual-cased-v2"),
        ("multilingual", "distiluse-base-multilingual-cased-v2"),
    ],
)
def test_aliases_resolve_to_their_model(alias, name):
    assert get_registry().resolve(alias, task=TASK).name == name


def test_the_listed_details_describe_each_model():
    models = AutoModel.list_models(task=TASK, return_dict=True)
    minilm = models["all-minilm-l6-v2"]
    assert minilm["details"]["vector_size"] == 384
    assert minilm["details"]["num_parameters"] == 22_713_216
    assert minilm["details"]["max_text_length"] == 256
    assert models["msmarco-distilroberta-base-v2"]["details"]["vector_size"] == 768
    assert models["distiluse-base-multilingual-cased-v2"]["details"]["vector_size"] == 512
    assert len(models["distiluse-base-multilingual-cased-v2"]["details"]["languages"]) >= 50
    assert all(TASK in model["finetunable"] for model in models.values())
    assert not get_registry().problems


def test_listing_models_imports_neither_torch_nor_sentence_transformers():
    assert imported_by_listing("bp_st", ["torch", "sentence_transformers", "transformers"]) == []


def test_stmodel_is_exported_through_bpcore_models():
    import bp_st
    import bp_st.model
    from bpcore.models import STModel

    assert STModel is bp_st.model.STModel
    assert bp_st.STModel is STModel
    assert sorted(row["name"] for row in STModel.list_models()) == sorted(["all-minilm-l6-v2", *HUB_MODELS])


def test_an_unreachable_hub_model_raises_model_load_error_naming_it():
    direct, by_alias = load_errors_offline(
        [
            f"bpcore.models.STModel({HUB_MODELS['msmarco-distilroberta-base-v2']!r})",
            'bpcore.TextVectorisation("multilingual-base")',
        ]
    )
    assert direct.startswith("ModelLoadError") and "msmarco-distilroberta-base-v2" in direct
    assert by_alias.startswith("ModelLoadError") and "distiluse-base-multilingual-cased-v2" in by_alias
    assert "local" in direct and "path" in direct
