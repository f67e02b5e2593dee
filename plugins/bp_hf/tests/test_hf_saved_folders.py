"""A saved bp-hf folder loads from inside itself only, whole, and within bounds; anything else is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_hf import tiny_bert_folder, tiny_gpt2_folder, tiny_nli_folder, tiny_t5_folder

import bpcore
from bpcore.testing.folders import edit_json, reason, watching

TEXT = "The striker scored twice"
LABELS = ["sport", "finance"]


def forget_files(folder: Path) -> None:
    """Drop the file list a save writes, as someone editing the folder would."""
    edit_json(folder / "config.json", lambda config: config.pop("files", None))


@pytest.fixture
def nli_model(nli_folder):
    from bp_hf import HFNLIModel

    return HFNLIModel(nli_folder, name="tiny-nli")


@pytest.fixture
def saved_nli(nli_model, tmp_path) -> Path:
    return Path(bpcore.save(nli_model, path=tmp_path / "models" / "nli"))


# -- the folder entry and the files it names --------------------------------------------------------


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_the_folder_entry_cannot_load_another_model(saved_nli, tmp_path, form):
    from bp_hf import HFNLIModel

    other = tmp_path / "elsewhere" / "other"
    bpcore.save(HFNLIModel(tiny_nli_folder(tmp_path / "other-src", seed=1), name="other"), path=other)
    target = str(other / "transformers") if form == "absolute" else "../../elsewhere/other/transformers"
    edit_json(saved_nli / "config.json", lambda config: config["model"].update(folder=target))
    with watching(other) as opened:
        with pytest.raises(bpcore.ModelLoadError) as refused:
            bpcore.load(saved_nli)
    why = "an absolute path" if form == "absolute" else "it leaves the saved folder"
    assert why in reason(refused.value, tmp_path)
    assert opened == [], "the load read another model's files"


def test_a_weights_index_cannot_name_shards_outside(saved_nli, tmp_path):
    inner = saved_nli / "transformers"
    (tmp_path / "outside.safetensors").write_bytes((inner / "model.safetensors").read_bytes())
    (inner / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {"classifier.bias": "../../../outside.safetensors"}}
    (inner / "model.safetensors.index.json").write_text(json.dumps(index))
    forget_files(saved_nli)
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved_nli)
    assert "it leaves the saved folder" in reason(refused.value, tmp_path)


# -- a folder missing what its model needs ----------------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    [("tokenizer.json", "tokenizer_config.json"), ("tokenizer.json",), ("tokenizer_config.json",)],
    ids=["both", "tokenizer.json", "tokenizer_config.json"],
)
def test_a_folder_without_its_tokenizer_is_refused_not_given_a_default_one(saved_nli, tmp_path, missing):
    for name in missing:
        (saved_nli / "transformers" / name).unlink()
    with pytest.raises(bpcore.ModelLoadError) as incomplete:  # the file list the save wrote says so
        bpcore.load(saved_nli)
    assert "the saved folder is incomplete" in reason(incomplete.value, tmp_path)
    forget_files(saved_nli)  # and without the list, the model itself knows what it needs
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved_nli)
    assert "tokenizer" in reason(refused.value, tmp_path)


def test_weights_converted_to_integers_are_refused(saved_nli, tmp_path):
    from safetensors.torch import load_file, save_file

    path = saved_nli / "transformers" / "model.safetensors"
    save_file({key: value.to(torch.int64) for key, value in load_file(path).items()}, path)
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved_nli)
    assert "wrong dtype" in reason(refused.value, tmp_path)


# -- numbers: sizes, ids, labels ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("vocab_size", 10**9, "beyond the bound"),
        ("num_hidden_layers", 10**9, "beyond the bound"),
        ("hidden_size", 64, "does not match the weights"),  # within bounds, but not what was saved
        ("num_hidden_layers", 3, "do not match the saved config"),  # a layer the weights lack
        ("pad_token_id", 5000, "not a token of the"),
    ],
)
def test_config_numbers_out_of_bounds_or_off_the_weights_are_refused(saved_nli, tmp_path, field, value, why):
    edit_json(saved_nli / "transformers" / "config.json", lambda config: config.update({field: value}))
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved_nli)
    assert why in reason(refused.value, tmp_path)


def test_a_label_index_beyond_the_head_is_refused_at_load(saved_nli, tmp_path):
    edit_json(
        saved_nli / "transformers" / "config.json", lambda config: config["label2id"].update(entailment=5)
    )
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved_nli)
    assert "beyond the 3 labels" in reason(refused.value, tmp_path)


def set_token_id(data: dict) -> None:
    data["model"]["vocab"]["the"] = 10**6


def set_token_type(data: dict) -> None:
    data["post_processor"]["pair"][-1]["SpecialToken"]["type_id"] = 7


@pytest.mark.parametrize("change", [set_token_id, set_token_type], ids=["token-id", "token-type"])
def test_a_tokenizer_making_ids_beyond_the_embeddings_is_refused(saved_nli, tmp_path, change):
    edit_json(saved_nli / "transformers" / "tokenizer.json", change)
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved_nli)
    assert "beyond the model's" in reason(refused.value, tmp_path)


def test_generation_settings_that_multiply_work_are_bounded(gpt2_folder, tmp_path):
    from bp_hf import HFCausalLMTGModel

    saved = Path(bpcore.save(HFCausalLMTGModel(gpt2_folder, name="tiny-gpt2"), path=tmp_path / "gpt2"))
    edit_json(
        saved / "transformers" / "generation_config.json", lambda config: config.update(num_beams=10**6)
    )
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert "num_beams is 1000000, beyond the bound of 64" in reason(refused.value, tmp_path)


def test_an_unchanged_folder_loads_with_the_same_answers(nli_model, saved_nli):
    before = bpcore.TextClassification(nli_model)(TEXT, LABELS)
    assert bpcore.TextClassification(bpcore.load(saved_nli))(TEXT, LABELS) == before


# -- the conformance kit's folder rules, for every bp-hf model --------------------------------------


def candidates(root: Path):
    from bp_hf import HFCausalLMTGModel, HFNLIModel, HFSeqTCModel, T5QASummaryEmotion
    from bpcore.testing import Candidate

    t5, gpt2 = tiny_t5_folder(root / "t5"), tiny_gpt2_folder(root / "gpt2")
    nli, bert = tiny_nli_folder(root / "nli"), tiny_bert_folder(root / "bert", id2label={0: "a", 1: "b"})
    return [
        Candidate(lambda: T5QASummaryEmotion(t5, name="tiny-t5"), tasks=["qa"], name="tiny-t5"),
        Candidate(
            lambda: HFCausalLMTGModel(gpt2, name="tiny-gpt2"), tasks=["text-generation"], name="tiny-gpt2"
        ),
        Candidate(lambda: HFNLIModel(nli, name="tiny-nli"), tasks=["text-classification"], name="tiny-nli"),
        Candidate(
            lambda: HFSeqTCModel(bert, name="tiny-bert-classifier"),
            tasks=["text-classification"],
            finetunable=["text-classification"],
            inputs={"text-classification": {"labels": None}},
            needs_finetuning=["text-classification"],
            name="tiny-bert-classifier",
        ),
    ]


def test_every_bp_hf_model_passes_the_folder_rules(tmp_path):
    from bpcore.testing.folder_checks import FOLDER_STATS, folder_checks

    FOLDER_STATS.clear()
    for candidate in candidates(tmp_path):
        for check in folder_checks(candidate):
            check(candidate)
    assert all(count > 10 for count in FOLDER_STATS.values()), FOLDER_STATS
