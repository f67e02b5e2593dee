"""What bp-hf registers: names, defaults, aliases, details, lazy imports, class exports, offline errors."""

from __future__ import annotations

import pytest

import bpcore
from bpcore.models import AutoModel
from bpcore.plugins.registry import get_registry
from bpcore.testing.fresh_process import imported_by_listing

HUB_MODELS = {
    "t5-base-qa-summary-emotion": ("qa", "kiri-ai/t5-base-qa-summary-emotion"),
    "t5-small": ("text-generation", "google-t5/t5-small"),
    "t5-base": ("text-generation", "google-t5/t5-base"),
    "distilgpt2": ("text-generation", "distilbert/distilgpt2"),
    "gpt2-medium": ("text-generation", "openai-community/gpt2-medium"),
    "gpt2-large": ("text-generation", "openai-community/gpt2-large"),
    "bart-large-mnli": ("text-classification", "facebook/bart-large-mnli"),
    "deberta-base-mnli": ("text-classification", "microsoft/deberta-base-mnli"),
    "xlmr-large-xnli": ("text-classification", "joeddav/xlm-roberta-large-xnli"),
    "xlnet-base-cased": ("text-classification", "xlnet/xlnet-base-cased"),
}


def test_every_model_is_listed_with_its_details():
    rows = {row["name"]: row for row in AutoModel.list_models() if row["plugin"] == "hf"}
    assert sorted(rows) == sorted(HUB_MODELS)
    for name, row in rows.items():
        details = row["details"]
        assert row["description"], name
        assert details["num_parameters"] > 1_000_000, name
        assert details["max_text_length"] >= 512, name
        assert details["languages"], name
        assert all({"name", "url"} <= set(credit) for credit in details["credits"]), name
    assert rows["t5-base-qa-summary-emotion"]["finetunable"] == [
        "qa",
        "summarisation",
        "emotion",
        "text-generation",
    ]
    assert rows["xlnet-base-cased"]["finetunable"] == ["text-classification"]
    assert rows["deberta-base-mnli"]["finetunable"] == []  # zero-shot only
    assert len(rows["xlmr-large-xnli"]["details"]["languages"]) == 15
    assert not [problem for problem in get_registry().problems if problem.plugin == "hf"]


@pytest.mark.parametrize(
    ("task", "name"),
    [
        ("qa", "t5-base-qa-summary-emotion"),
        ("summarisation", "t5-base-qa-summary-emotion"),
        ("emotion", "t5-base-qa-summary-emotion"),
        ("text-generation", "gpt2-medium"),
        ("text-classification", "deberta-base-mnli"),
    ],
)
def test_task_defaults(task, name):
    assert get_registry().default_for(task).name == name


@pytest.mark.parametrize(
    ("alias", "task", "name"),
    [
        ("english-base", "text-classification", "deberta-base-mnli"),
        ("english-base", "text-generation", "gpt2-medium"),
        ("multilingual-base", "text-classification", "xlmr-large-xnli"),
        # Backprop's names for the T5 generators (spec 5.3 and 6.10 load "t5_small").
        ("t5_small", "text-generation", "t5-small"),
        ("t5_base", "text-generation", "t5-base"),
    ],
)
def test_per_task_aliases(alias, task, name):
    assert get_registry().resolve(alias, task=task).name == name


@pytest.mark.parametrize("name", sorted(HUB_MODELS))
def test_loading_a_hub_model_offline_names_it_and_says_to_pass_a_folder(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    task, hub_id = HUB_MODELS[name]
    with pytest.raises(bpcore.ModelLoadError) as caught:
        bpcore.models.AutoModel.from_pretrained(name, task=task)
    message = str(caught.value)
    assert repr(name) in message and hub_id in message
    assert "local folder" in message


def test_listing_models_imports_neither_torch_nor_transformers():
    assert imported_by_listing("bp_hf", ["torch", "transformers"]) == []


def test_model_classes_are_exported_lazily_and_through_bpcore_models():
    import bp_hf
    import bp_hf.generation
    import bp_hf.nli
    import bp_hf.sequence_classification
    import bp_hf.t5_multitask

    assert (
        bpcore.models.T5QASummaryEmotion is bp_hf.T5QASummaryEmotion is bp_hf.t5_multitask.T5QASummaryEmotion
    )
    assert bpcore.models.HFCausalLMTGModel is bp_hf.generation.HFCausalLMTGModel
    assert bpcore.models.HFNLIModel is bp_hf.nli.HFNLIModel
    assert bpcore.models.HFSeqTCModel is bp_hf.sequence_classification.HFSeqTCModel
    assert bpcore.models.HFModel is bp_hf.HFModel
    assert bpcore.models.HFTextGenerationModel is bp_hf.HFTextGenerationModel
    assert {row["name"] for row in bp_hf.HFNLIModel.list_models()} == {
        "bart-large-mnli",
        "deberta-base-mnli",
        "xlmr-large-xnli",
    }
    with pytest.raises(AttributeError):
        bp_hf.NoSuchModel  # noqa: B018


def test_a_registered_name_loads_a_local_folder(register_models, t5_folder):
    register_models(
        name="my-tiny-t5",
        factory="bp_hf.t5_multitask:T5QASummaryEmotion",
        tasks=["qa", "emotion", "summarisation", "text-generation"],
        finetunable=["emotion"],
        init_kwargs={"model_path": str(t5_folder)},
    )
    emotion = bpcore.Emotion("my-tiny-t5")
    assert emotion.model.name == "my-tiny-t5"
    assert isinstance(emotion("i really liked it"), str)


def test_a_folder_that_is_no_model_fails_with_a_model_load_error(tmp_path):
    from bp_hf import HFCausalLMTGModel

    with pytest.raises(bpcore.ModelLoadError, match="does not hold a loadable transformers"):
        HFCausalLMTGModel(str(tmp_path))


def test_a_family_class_without_a_model_path_names_the_argument():
    import bp_hf

    with pytest.raises(bpcore.InputTypeError) as caught:
        bp_hf.HFSeqTCModel()
    assert caught.value.problems[0][0] == "model_path"
    # Each family differs from the base in class attributes only.
    assert bp_hf.T5QASummaryEmotion.default_model_path == "kiri-ai/t5-base-qa-summary-emotion"
    assert "__init__" not in vars(bp_hf.HFSeqTCModel) and "__init__" not in vars(bp_hf.HFNLIModel)
