"""A plain ``save_pretrained`` folder is a model: a task given its path answers as the bp-hf class built on it.

Also the spec's helper methods (6.4.1 ``calculate_probability``, 6.8.1 ``qa`` / ``emote_or_summary``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_hf import tiny_bert_folder

import bpcore

CONTEXT = "Sally lives in London. Bob invented the synthesizer."
QUESTION = "Where does Sally live?"
TEXTS = ["I really liked the service", "The football match was won"]
LABELS = ["positive", "sports", "politics"]


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT sequence classifier whose labels are no NLI classes."""
    return tiny_bert_folder(tmp_path_factory.mktemp("classifier"), id2label={0: "negative", 1: "positive"})


def test_a_t5_folder_answers_qa_emotion_and_summarisation_as_t5_qa_summary_emotion(t5_folder):
    from bp_hf import T5QASummaryEmotion

    explicit = T5QASummaryEmotion(t5_folder)
    qa = bpcore.QA(str(t5_folder))
    assert type(qa.model) is T5QASummaryEmotion
    assert qa(QUESTION, CONTEXT) == bpcore.QA(explicit)(QUESTION, CONTEXT)
    assert bpcore.Emotion(str(t5_folder))(TEXTS) == bpcore.Emotion(explicit)(TEXTS)
    assert bpcore.Summarisation(str(t5_folder))(TEXTS[0]) == bpcore.Summarisation(explicit)(TEXTS[0])


def test_a_t5_folder_generates_text_as_hf_seq2seq_tg_model(t5_folder):
    from bp_hf import HFSeq2SeqTGModel

    tg = bpcore.TextGeneration(str(t5_folder))
    assert type(tg.model) is HFSeq2SeqTGModel
    assert tg(TEXTS, max_length=8) == bpcore.TextGeneration(HFSeq2SeqTGModel(t5_folder))(TEXTS, max_length=8)
    assert type(bpcore.load(t5_folder)) is HFSeq2SeqTGModel  # no task: text generation


def test_a_gpt2_folder_generates_text_as_hf_causal_lm_tg_model(gpt2_folder):
    from bp_hf import HFCausalLMTGModel

    tg = bpcore.TextGeneration(str(gpt2_folder))
    assert type(tg.model) is HFCausalLMTGModel
    explicit = bpcore.TextGeneration(HFCausalLMTGModel(gpt2_folder))
    assert tg("I like to go to", max_length=6) == explicit("I like to go to", max_length=6)


def test_an_nli_folder_classifies_zero_shot_as_hf_nli_model(nli_folder):
    from bp_hf import HFNLIModel

    tc = bpcore.TextClassification(str(nli_folder))
    assert type(tc.model) is HFNLIModel
    assert tc(TEXTS, [LABELS, LABELS]) == bpcore.TextClassification(HFNLIModel(nli_folder))(
        TEXTS, [LABELS, LABELS]
    )


def test_a_classifier_folder_is_hf_seq_tc_model_with_its_labels(classifier_folder):
    from bp_hf import HFSeqTCModel

    tc = bpcore.TextClassification(str(classifier_folder))
    assert type(tc.model) is HFSeqTCModel
    assert tc.model.labels == ["negative", "positive"]
    assert tc(TEXTS) == bpcore.TextClassification(HFSeqTCModel(classifier_folder))(TEXTS)


def test_a_folder_for_another_task_is_refused(t5_folder, nli_folder):
    with pytest.raises(bpcore.TaskNotSupportedError, match="not 'text-vectorisation'"):
        bpcore.TextVectorisation(str(t5_folder))
    with pytest.raises(bpcore.TaskNotSupportedError, match="not 'qa'"):
        bpcore.QA(str(nli_folder))


def test_pickled_weights_are_refused_by_name(nli_folder, tmp_path):
    folder = Path(shutil.copytree(nli_folder, tmp_path / "pickled"))
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(bpcore.ModelLoadError, match="no pickled weights"):
        bpcore.TextClassification(str(folder))


def test_a_plain_folder_is_checked_as_a_saved_one_is(nli_folder, tmp_path):
    folder = Path(shutil.copytree(nli_folder, tmp_path / "huge"))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 10**9}))
    with pytest.raises(bpcore.ModelLoadError, match="vocab_size"):
        bpcore.TextClassification(str(folder))


def test_a_folder_with_code_of_its_own_is_not_recognised_as_a_known_architecture(nli_folder, tmp_path):
    folder = Path(shutil.copytree(nli_folder, tmp_path / "custom"))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architectures": ["MyCustomModel"]}))
    with pytest.raises(bpcore.ModelLoadError, match="no installed plugin recognises it"):
        bpcore.TextClassification(str(folder))


# -- the spec's helper methods ------------------------------------------------------------------------


def test_qa_and_emote_or_summary_answer_as_the_tasks(t5_folder):
    from bp_hf import T5QASummaryEmotion

    model = T5QASummaryEmotion(t5_folder)
    assert model.qa(QUESTION, CONTEXT) == bpcore.QA(model)(QUESTION, CONTEXT)
    assert model.qa([QUESTION], [CONTEXT]) == bpcore.QA(model)([QUESTION], [CONTEXT])
    assert model.emote_or_summary(TEXTS[0], "emotion") == bpcore.Emotion(model)(TEXTS[0])
    assert model.emote_or_summary(TEXTS, "summarise") == bpcore.Summarisation(model)(TEXTS)
    assert (
        model.process_qa(QUESTION, CONTEXT, [("Who?", "Sally")])
        == f"q: Who? a: Sally q: {QUESTION} c: {CONTEXT}"
    )
    with pytest.raises(bpcore.InputError, match="'emotion' or 'summarise'"):
        model.emote_or_summary(TEXTS[0], "translate")


def test_calculate_probability_is_each_labels_own_probability(nli_folder):
    from bp_hf import HFNLIModel

    model = HFNLIModel(nli_folder)
    probabilities = model.calculate_probability(TEXTS[0], LABELS)
    multi_label = bpcore.TextClassification(model)(TEXTS[0], LABELS, multi_label=True)
    assert probabilities == pytest.approx([multi_label[label] for label in LABELS])
