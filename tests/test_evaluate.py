"""``task.evaluate``: the metrics of each kind equal scikit-learn's, SciPy's and rouge-score's on the
same predictions, finetuning raises them, and bad data gets bpcore's errors (tiny models)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from core_helpers import TEXT_TO_TEXT_TASKS
from tiny_models import TinyTextModel

import bpcore
from bpcore.evaluation import Metrics, metrics_for
from bpcore.evaluation.definitions import METRICS, kind_of
from bpcore.tasks import TASK_CLASSES
from bpcore.training import BpcoreWarning

NAMES = {"politics": "label one", "science": "label two", "film": "label three"}
TRAIN = {
    "texts": [
        "parliament passed the new election bill",
        "the senate votes on the tax law",
        "the president signed a new law",
        "the minister resigned after the vote",
        "researchers published a physics paper",
        "a new telescope measured distant galaxies",
        "the lab sequenced the genome of a plant",
        "scientists ran an experiment on cells",
        "the film won an award for best actor",
        "the movie review praised the director",
        "a new comedy film opened in cinemas",
        "the actress starred in a drama film",
    ],
    "labels": [NAMES[topic] for topic in ["politics"] * 4 + ["science"] * 4 + ["film"] * 4],
}
TEST = {
    "texts": [
        "the senate passed a tax law",
        "a telescope saw a new galaxy",
        "the film director won an award",
        "the minister signed the bill",
        "scientists measured the genome",
        "a drama film opened in cinemas",
    ],
    "labels": [NAMES[topic] for topic in ["politics", "science", "film"] * 2],
}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models on a small shared machine run faster on one thread."""


@pytest.fixture(scope="module")
def finetuned_model() -> TinyTextModel:
    """The tiny text classifier finetuned on TRAIN (validated on it too: it is small), once per module."""
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setenv("BPCORE_LOAD_PLUGINS", "")
        warnings.simplefilter("ignore", BpcoreWarning)
        tc = bpcore.TextClassification(TinyTextModel(name="tiny-text"))
        tc.finetune(TRAIN, epochs=20, batch_size=4, seed=0, validation_split=0)
    return tc.model


@pytest.fixture
def finetuned(finetuned_model: TinyTextModel) -> bpcore.TextClassification:
    return bpcore.TextClassification(finetuned_model)


@pytest.fixture(scope="module")
def saved(finetuned_model: TinyTextModel, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The finetuned classifier's folder, for the command (saved once: saving looks up distributions)."""
    return str(bpcore.save(finetuned_model, path=tmp_path_factory.mktemp("saved") / "evaluated"))


# -- each metric is the library's number on the same predictions -------------------------------


def test_single_label_metrics_are_scikit_learns(tiny_plugin, seeded):
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    tc = bpcore.TextClassification("tiny-text")
    metrics = tc.evaluate(TRAIN, predictions=True)
    # The predictions are the task's own answers' top labels (zero-shot over the data's labels).
    labels = sorted(set(TRAIN["labels"]))
    answers = tc(TRAIN["texts"], labels)
    assert metrics.predictions == [max(answer, key=answer.get) for answer in answers]
    truth, predicted = TRAIN["labels"], metrics.predictions
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    assert metrics["f1_macro"] == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-12)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels)
    for i, label in enumerate(labels):
        row = metrics["per_label"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i])
        )
    assert metrics["confusion_matrix"]["labels"] == tuple(labels)
    assert np.array_equal(
        metrics["confusion_matrix"]["matrix"], confusion_matrix(truth, predicted, labels=labels)
    )
    assert metrics.settings["labels"] == "zero-shot" and metrics.variant == "single_label"


def test_multi_label_metrics_are_scikit_learns(finetuned):
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score

    params = {"texts": TEST["texts"], "labels": [[label] for label in TEST["labels"]]}
    params["labels"][0] = [NAMES["politics"], NAMES["science"]]  # one item with two labels
    threshold = 0.4
    metrics = finetuned.evaluate(params, threshold=threshold, predictions=True)
    assert metrics.variant == "multi_label" and metrics.settings == {
        "labels": "learned",
        "threshold": threshold,
    }
    labels = sorted(NAMES.values())
    answers = finetuned(params["texts"], multi_label=True)
    scores = np.array([[answer[label] for label in labels] for answer in answers])
    true = np.array([[label in item for label in labels] for item in params["labels"]], dtype=int)
    predicted = (scores >= threshold).astype(int)
    assert metrics["f1_micro"] == pytest.approx(f1_score(true, predicted, average="micro"), abs=1e-12)
    assert metrics["f1_macro"] == pytest.approx(f1_score(true, predicted, average="macro"), abs=1e-12)
    assert metrics["exact_match"] == pytest.approx(accuracy_score(true, predicted), abs=1e-12)
    assert metrics["mean_average_precision"] == pytest.approx(
        average_precision_score(true, scores), abs=1e-12
    )
    assert metrics.predictions == [[label for label, on in zip(labels, row) if on] for row in predicted]


def test_cosine_similarity_metrics_are_scipys(tiny_plugin, seeded):
    from scipy.stats import pearsonr, spearmanr

    tv = bpcore.TextVectorisation("tiny-text")
    params = {
        "texts1": TRAIN["texts"][:6],
        "texts2": TRAIN["texts"][6:],
        "similarity_scores": [0.9, 0.1, 0.4, -0.2, 0.7, 0.3],
    }
    metrics = tv.evaluate(params, predictions=True)
    first, second = np.array(tv(params["texts1"])), np.array(tv(params["texts2"]))
    cosines = (first * second).sum(1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
    assert metrics.predictions == pytest.approx(cosines.tolist(), abs=1e-9)
    assert metrics["pearson_cosine"] == pytest.approx(
        pearsonr(params["similarity_scores"], cosines)[0], abs=1e-9
    )
    assert metrics["spearman_cosine"] == pytest.approx(
        spearmanr(params["similarity_scores"], cosines)[0], abs=1e-9
    )


def test_text_metrics_follow_squad_and_rouge_score(tiny_plugin, seeded):
    from rouge_score import rouge_scorer

    tg = bpcore.TextGeneration("tiny-t2t")
    inputs = ["the cat sat", "a dog ran home", "birds sing"]
    generated = tg(inputs)
    # References equal to the answers but for case, punctuation and articles, then one with a word more.
    references = [f"The {generated[0].upper()}!", f"an {generated[1]}.", f"{generated[2]} zzz"]
    metrics = tg.evaluate({"input_text": inputs, "output_text": references}, predictions=True)
    assert metrics.predictions == generated
    assert metrics["exact_match"] == pytest.approx(2 / 3)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [scorer.score(ref, answer)["rougeL"].fmeasure for ref, answer in zip(references, generated)]
    assert metrics["rougeL"] == pytest.approx(sum(rouge) / 3, abs=1e-12)
    assert metrics["f1"] >= metrics["exact_match"]


def test_token_f1_counts_shared_tokens_after_normalisation():
    from bpcore.evaluation.texts import normalize_answer, token_f1

    assert normalize_answer("The  Eiffel-Tower, in PARIS!") == "eiffeltower in paris"
    # 2 of 3 answer tokens are right and 2 of 4 reference tokens are found: F1 = 2PR / (P + R).
    precision, recall = 2 / 3, 2 / 4
    assert token_f1("a big red house near", "the red house far") == pytest.approx(
        2 * precision * recall / (precision + recall)
    )
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0 and token_f1("x", "y") == 0.0


@pytest.mark.parametrize("task", TEXT_TO_TEXT_TASKS)
def test_every_text_task_reports_the_text_metrics(tiny_plugin, task):
    task_class = TASK_CLASSES[task]
    params = (
        {"questions": ["who?", "where?"], "answers": ["Sally", "London"], "contexts": ["Sally", "London"]}
        if task == "qa"
        else {"input_text": ["one", "two"], "output_text": ["a", "b"]}
    )
    metrics = task_class("tiny-t2t").evaluate(params)
    assert list(metrics) == [metric.name for metric in metrics_for(task)]
    assert all(0.0 <= value <= 1.0 for value in metrics.values())


# -- finetuning makes them better ---------------------------------------------------------------


def test_finetuning_raises_accuracy_on_held_out_data(tiny_plugin, seeded):
    tc = bpcore.TextClassification("tiny-text")
    before = tc.evaluate(TEST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BpcoreWarning)
        tc.finetune(TRAIN, epochs=20, batch_size=4, seed=0, validation_split=0)
    after = tc.evaluate(TEST)
    assert before.settings["labels"] == "zero-shot" and after.settings["labels"] == "learned"
    assert before["accuracy"] < after["accuracy"]
    assert after["accuracy"] >= 0.9 and after["f1_macro"] >= 0.9


# -- images and groups --------------------------------------------------------------------------


def test_image_tasks_evaluate_their_variants(tiny_plugin, seeded, image_files):
    paths = {name: str(path) for name, path in image_files.items()}
    reds, greens = [paths["red"], paths["red2"]], [paths["green"], paths["green2"]]
    images = reds + greens + [paths["blue"], paths["blue2"]]
    groups = ["red", "red", "green", "green", "blue", "blue"]
    ic = bpcore.ImageClassification("tiny-image")
    assert set(ic.evaluate({"images": images, "labels": groups})) == {
        "accuracy",
        "f1_macro",
        "per_label",
        "confusion_matrix",
    }
    iv = bpcore.ImageVectorisation("tiny-image")
    retrieval = iv.evaluate({"images": images, "groups": groups}, predictions=True)
    assert list(retrieval) == [metric.name for metric in metrics_for("image-vectorisation", "triplet")]
    assert len(retrieval.predictions) == 6 and set(retrieval.predictions) <= set(groups)
    itv = bpcore.ImageTextVectorisation("tiny-image")
    pairs = {
        "imgs1": reds + greens,
        "imgs2": greens + reds,
        "texts1": ["red", "red", "green", "green"],
        "texts2": ["green", "green", "red", "red"],
        "similarity_scores": [0.0, 0.1, 0.2, 0.3],
    }
    assert set(itv.evaluate(pairs, variant="cosine_similarity")) == {"pearson_cosine", "spearman_cosine"}


def test_perfectly_grouped_vectors_retrieve_perfectly(tiny_plugin, seeded):
    tv = bpcore.TextVectorisation("tiny-text")
    # The same text twice per group: each item's nearest neighbour is its twin (cosine 1).
    texts = ["alpha beta", "alpha beta", "gamma delta", "gamma delta", "omega psi", "omega psi"]
    metrics = tv.evaluate({"texts": texts, "groups": [1, 1, 2, 2, 3, 3]})
    assert metrics.scalars() == pytest.approx({name: 1.0 for name in metrics})


# -- the metrics are declared once ----------------------------------------------------------------


@pytest.mark.parametrize("task", bpcore.TASKS)
def test_every_variant_has_declared_metrics(task):
    for variant in TASK_CLASSES[task].variants:
        assert kind_of(task, variant) in METRICS
        assert metrics_for(task, variant) == METRICS[kind_of(task, variant)]


def test_metrics_are_a_read_only_mapping_printed_as_a_table(finetuned):
    metrics = finetuned.evaluate(TEST)
    assert isinstance(metrics, Metrics)
    assert list(metrics) == [metric.name for metric in metrics_for("text-classification")]
    with pytest.raises(TypeError):
        metrics["accuracy"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError):
        metrics["per_label"]["label one"]["f1"] = 1.0
    text = str(metrics)
    assert text.splitlines()[0] == "text-classification (single_label): 6 examples, labels: learned"
    for name in ("accuracy", "f1_macro", *NAMES.values(), "confusion matrix"):
        assert name in text
    assert json.loads(json.dumps(metrics.as_dict()))["metrics"]["accuracy"] == metrics["accuracy"]
    assert metrics.predictions is None


# -- bad data -----------------------------------------------------------------------------------


def test_a_label_the_model_does_not_know_names_the_item(finetuned):
    labels = list(TEST["labels"])
    labels[4] = "sports"
    with pytest.raises(bpcore.InputError, match="'sports' is not a label this model knows") as caught:
        finetuned.evaluate({"texts": TEST["texts"], "labels": labels})
    assert caught.value.field == "params.labels[4]"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"texts": [], "labels": []}, "params.texts"),
        ({"texts": ["a", "b"], "labels": ["x"]}, "params.labels"),
        ({"texts": ["a", " "], "labels": ["x", "y"]}, "params.texts[1]"),
        ({"texts": ["a"]}, "params.labels"),
        (None, "params"),
    ],
)
def test_bad_data_gets_input_errors(tiny_plugin, params, field):
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.TextClassification("tiny-text").evaluate(params)
    assert caught.value.field == field


def test_bad_threshold_and_scores(tiny_plugin):
    tc = bpcore.TextClassification("tiny-text")
    with pytest.raises(bpcore.InputError, match="between 0 and 1") as caught:
        tc.evaluate(TEST, threshold=1.5)
    assert caught.value.field == "threshold"
    same = {"texts1": ["a", "b"], "texts2": ["c", "d"], "similarity_scores": [0.5, 0.5]}
    with pytest.raises(bpcore.InputError, match="different similarity_scores"):
        bpcore.TextVectorisation("tiny-text").evaluate(same)


def test_a_missing_metrics_library_says_what_to_install(tiny_plugin, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were not installed
    with pytest.raises(bpcore.BpcoreError, match=r"scikit-learn.*pip install 'bpcore\[evaluate\]'") as caught:
        bpcore.TextClassification("tiny-text").evaluate(TEST)
    assert isinstance(caught.value.__cause__, ImportError)


# -- bpcore evaluate ------------------------------------------------------------------------------


def write_jsonl(path: Path, params: dict) -> Path:
    rows = [dict(zip(params, values)) for values in zip(*params.values())]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_the_command_prints_a_table_and_json(finetuned, saved, tmp_path, capsys):
    from bpcore.cli import main

    data = write_jsonl(tmp_path / "test.jsonl", TEST)
    assert main(["evaluate", "text-classification", "--model", saved, "--data", str(data)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("text-classification (single_label): 6 examples, labels: learned")
    accuracy = finetuned.evaluate(TEST)["accuracy"]
    assert f"accuracy  {accuracy:.4f}" in table
    assert main(["evaluate", "text-classification", "--model", saved, "--data", str(data), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["metrics"]["accuracy"] == pytest.approx(accuracy)
    assert printed["variant"] == "single_label" and printed["examples"] == 6


def test_the_command_points_at_the_bad_line(saved, tmp_path, capsys):
    from bpcore.cli import main

    labels = list(TEST["labels"])
    labels[2] = "sports"
    data = write_jsonl(tmp_path / "test.jsonl", {"texts": TEST["texts"], "labels": labels})
    assert main(["evaluate", "text-classification", "--model", saved, "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "bpcore: error: data: line 3, column labels: 'sports' is not a label this model knows"
    )
