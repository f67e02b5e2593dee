"""Text classification: zero-shot with an NLI model, and finetuned on the user's labels."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from tiny_hf import tiny_bert_folder

import bpcore
from bp_hf import HFNLIModel, HFSeqTCModel

TEXTS = ["i hate this movie", "the vote passed in parliament today", "the team won the cup", "rain"]
LABELS = ["sports", "politics", "film", "weather"]


@pytest.fixture(scope="module")
def nli(nli_folder):
    return HFNLIModel(model_path=nli_folder)


def count_forwards(model):
    calls = []
    handle = model.model.register_forward_hook(
        lambda module, args, kwargs, output: calls.append(1), with_kwargs=True
    )
    return calls, handle


def test_zero_shot_probabilities_sum_to_one_with_top_k_and_per_text_labels(nli):
    tc = bpcore.TextClassification(nli)
    single = tc(TEXTS[0], LABELS)
    assert set(single) == set(LABELS) and math.isclose(sum(single.values()), 1, rel_tol=1e-5)
    assert list(single.values()) == sorted(single.values(), reverse=True)
    batch = tc(TEXTS, LABELS)
    for text, answer in zip(TEXTS, batch):
        assert answer == pytest.approx(tc(text, LABELS), abs=1e-5)
    top = tc(TEXTS, LABELS, top_k=2)
    assert all(len(answer) == 2 for answer in top)
    assert list(top[1]) == list(batch[1])[:2]
    per_text = tc(TEXTS[:2], [["sports", "film"], ["politics", "weather", "film"]])
    assert set(per_text[0]) == {"sports", "film"} and set(per_text[1]) == {"politics", "weather", "film"}


def test_every_pair_of_a_call_runs_in_a_few_length_sorted_batches(nli):
    calls, handle = count_forwards(nli)
    try:
        texts = [" ".join(["the cat"] * n) for n in range(1, 21)]  # 20 texts x 4 labels = 80 pairs
        answers = bpcore.TextClassification(nli)(texts, LABELS)
    finally:
        handle.remove()
    assert len(calls) == math.ceil(80 / nli.inference_batch_size)
    assert answers[-1] == pytest.approx(bpcore.TextClassification(nli)(texts[-1], LABELS), abs=1e-5)


def test_multi_label_gives_an_independent_probability_per_label(nli):
    # Called on the model directly until TextClassification.__call__ takes multi_label.
    task_input = {
        "text": [TEXTS[0], TEXTS[0]],
        "labels": [LABELS, LABELS[:2]],
        "top_k": 0,
        "multi_label": True,
    }
    answers = nli(task_input, task="text-classification")
    assert [set(answer) for answer in answers] == [set(LABELS), set(LABELS[:2])]
    assert all(0 <= p <= 1 for answer in answers for p in answer.values())
    assert not math.isclose(sum(answers[0].values()), 1, rel_tol=1e-3)
    # Independent: a label's probability does not depend on the other labels asked about.
    assert answers[1]["sports"] == pytest.approx(answers[0]["sports"], abs=1e-5)
    # It is the entailment-vs-contradiction softmax of the NLI logits.
    logits = nli.nli_logits([TEXTS[0]], [["sports"]])[0][0]
    expected = torch.softmax(logits[[nli.contradiction_index, nli.entailment_index]], dim=0)[1].item()
    assert answers[0]["sports"] == pytest.approx(expected, abs=1e-5)


def test_the_entailment_index_is_read_from_label2id(nli, tmp_path):
    assert (nli.entailment_index, nli.contradiction_index) == (2, 0)
    reordered = HFNLIModel(
        tiny_bert_folder(tmp_path / "nli", id2label={0: "ENTAILMENT", 1: "neutral", 2: "Contradiction"})
    )
    assert (reordered.entailment_index, reordered.contradiction_index) == (0, 2)
    with pytest.raises(bpcore.ModelLoadError, match="entailment"):
        HFNLIModel(tiny_bert_folder(tmp_path / "not-nli", id2label={0: "cat", 1: "dog"}))


def test_zero_shot_needs_labels(nli):
    with pytest.raises(bpcore.InputError, match="input.labels"):
        bpcore.TextClassification(nli)("some text")
    with pytest.raises(bpcore.InputError, match=r"input.labels\[1\]"):
        bpcore.TextClassification(nli)(["a", "b"], [["x"], []])


def test_nli_model_saves_and_loads_with_identical_scores(nli):
    before = bpcore.TextClassification(nli)(TEXTS, LABELS)
    loaded = bpcore.load(bpcore.save(nli, "tiny-nli"))
    assert isinstance(loaded, HFNLIModel)
    assert bpcore.TextClassification(loaded)(TEXTS, LABELS) == before


# -- finetuned classification ------------------------------------------------------------------
TOPICS = {
    "sports": [
        "the team won the match",
        "the coach praised the player",
        "a late goal won the cup",
        "the season ended with a football win",
        "the player scored two goals",
    ],
    "politics": [
        "the minister spoke in parliament",
        "the election vote was close",
        "the president signed the law",
        "the party lost the election",
        "government policy on tax changed",
    ],
    "weather": [
        "rain and wind all day",
        "snow on the mountain",
        "the sun and sky were clear",
        "cloud and rain over the sea",
        "wind and snow in the city",
    ],
}


def topic_params():
    texts = [text for examples in TOPICS.values() for text in examples]
    labels = [label for label, examples in TOPICS.items() for _ in examples]
    return {"texts": texts, "labels": labels}


def quiet_finetune(task, params, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return task.finetune(params, seed=0, **kwargs)


def test_a_tiny_encoder_finetunes_on_labels_which_survive_save_and_load(tmp_path):
    model = HFSeqTCModel(tiny_bert_folder(tmp_path / "bert", id2label={0: "LABEL_0", 1: "LABEL_1"}))
    tc = bpcore.TextClassification(model)
    with pytest.raises(bpcore.InputError, match="finetune"):
        tc("the team won")
    history = quiet_finetune(
        tc,
        topic_params(),
        validation_split=0,
        epochs=25,
        batch_size=8,
        early_stopping_epochs=0,
        configure_optimizers=lambda: torch.optim.AdamW(tc.model.parameters(), lr=1e-2),
    )
    assert history.train_loss[-1] < history.train_loss[0]
    answer = tc("the team won the match")
    assert set(answer) == set(TOPICS) and math.isclose(sum(answer.values()), 1, rel_tol=1e-5)
    # A memorising run: nearly all of its own texts get their labels back.
    params = topic_params()
    predicted = [next(iter(scores)) for scores in tc(params["texts"])]
    correct = sum(guess == label for guess, label in zip(predicted, params["labels"]))
    assert correct >= 12, list(zip(predicted, params["labels"]))
    assert set(tc("the team won", ["sports", "politics"])) == {"sports", "politics"}
    with pytest.raises(bpcore.InputError, match=r"input.labels\[0\]"):
        tc("the team won", ["cooking"])

    loaded = bpcore.TextClassification(bpcore.load(bpcore.save(tc.model, "tiny-topics")))
    assert loaded.model.labels == ["politics", "sports", "weather"]
    assert loaded(TOPICS["sports"]) == tc(TOPICS["sports"])


def test_multi_label_finetuning_gives_independent_probabilities(tmp_path):
    tc = bpcore.TextClassification(HFSeqTCModel(tiny_bert_folder(tmp_path / "bert")))
    params = {
        "texts": ["rain and wind", "the team won", "the team won in the rain", "the vote passed"],
        "labels": [["weather"], ["sports"], ["sports", "weather"], ["politics"]],
    }
    history = quiet_finetune(
        tc,
        params,
        variant="multi_label",
        validation_split=0,
        epochs=30,
        batch_size=4,
        early_stopping_epochs=0,
        configure_optimizers=lambda: torch.optim.AdamW(tc.model.parameters(), lr=3e-3),
    )
    assert history.train_loss[-1] < history.train_loss[0]
    assert tc.model.is_multi_label
    answer = tc("the team won in the rain")
    assert all(0 <= p <= 1 for p in answer.values())
    assert answer["sports"] > 0.5 and answer["weather"] > 0.5 and answer["politics"] < 0.5
    loaded = bpcore.load(bpcore.save(tc.model, "tiny-multi"))
    assert bpcore.TextClassification(loaded)("the team won in the rain") == pytest.approx(answer, abs=1e-6)


def test_a_pretrained_minilm_learns_topics_that_generalise_to_unseen_texts():
    from bp_st.bundled import all_minilm_path

    tc = bpcore.TextClassification(HFSeqTCModel(all_minilm_path()))
    params = {
        "texts": [
            "The striker scored twice in the final",
            "Our goalkeeper saved a penalty",
            "The team won the league title",
            "She ran the marathon in record time",
            "The coach was sacked after the defeat",
            "Fans cheered as the match ended",
            "He hit a home run in the ninth inning",
            "The tennis final went to five sets",
            "The senate passed the new budget bill",
            "Voters head to the polls tomorrow",
            "The prime minister resigned today",
            "Parliament debated the tax reform",
            "The president vetoed the law",
            "The opposition party won the election",
            "Diplomats met to negotiate a treaty",
            "The mayor announced new policies",
            "Preheat the oven and bake the bread",
            "Stir the soup and add some salt",
            "This pasta recipe uses fresh basil",
            "Chop the onions and fry them in butter",
            "Whisk the eggs with sugar for the cake",
            "Grill the chicken for ten minutes",
            "Season the salad with olive oil",
            "Simmer the sauce until thick",
        ],
        "labels": ["sports"] * 8 + ["politics"] * 8 + ["cooking"] * 8,
    }
    quiet_finetune(
        tc,
        params,
        validation_split=0,
        epochs=6,
        batch_size=8,
        early_stopping_epochs=0,
        configure_optimizers=lambda: torch.optim.AdamW(tc.model.parameters(), lr=1e-4),
    )
    unseen = {
        "The midfielder was injured during the game": "sports",
        "The basketball players celebrated their championship": "sports",
        "Lawmakers voted on the healthcare act": "politics",
        "The governor campaigned for re-election": "politics",
        "Knead the dough and let it rise": "cooking",
        "Roast the vegetables with garlic and pepper": "cooking",
    }
    answers = tc(list(unseen))
    assert [next(iter(answer)) for answer in answers] == list(unseen.values())
