"""Every task on the tiny models: single and batched calls agree, outputs are JSON, finetuning works."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import bpcore
from bpcore.training import BpcoreWarning

TEXTS = [
    "I really liked the service I received!",
    "Meh, it was not impressive.",
    "The weather is nice today.",
]


def assert_same(batched, singles):
    assert len(batched) == len(singles)
    for one, other in zip(batched, singles):
        if isinstance(one, dict):
            assert one.keys() == other.keys()
            assert list(one.values()) == pytest.approx(list(other.values()), abs=1e-5)
        elif isinstance(one, list) and one and isinstance(one[0], float):
            assert one == pytest.approx(other, abs=1e-5)
        else:
            assert one == other


@pytest.fixture
def tasks(tiny_plugin, seeded):
    return {
        "qa": bpcore.QA(),
        "text-classification": bpcore.TextClassification(),
        "emotion": bpcore.Emotion(),
        "summarisation": bpcore.Summarisation(),
        "text-generation": bpcore.TextGeneration(),
        "text-vectorisation": bpcore.TextVectorisation(),
        "image-classification": bpcore.ImageClassification(),
        "image-vectorisation": bpcore.ImageVectorisation(),
        "image-text-vectorisation": bpcore.ImageTextVectorisation(),
    }


def test_every_task_has_its_task_string(tasks):
    assert set(tasks) == set(bpcore.TASKS)
    for name, task in tasks.items():
        assert task.task == name
        assert name in task.model.tasks
        assert repr(task).startswith(type(task).__name__)


# -- batch vs single ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["emotion", "summarisation", "text-generation", "text-vectorisation"])
def test_text_tasks_batch_equals_single(tasks, name):
    task = tasks[name]
    batched = task(TEXTS)
    assert isinstance(batched, list) and len(batched) == len(TEXTS)
    assert_same(batched, [task(text) for text in TEXTS])
    json.dumps(batched)


def test_text_classification_batch_equals_single(tasks):
    tc = tasks["text-classification"]
    labels = ["praise", "complaint", "weather"]
    assert_same(tc(TEXTS, labels), [tc(text, labels) for text in TEXTS])
    per_item = [["praise", "complaint"], ["good", "bad", "neutral"], ["sun", "rain"]]
    batched = tc(TEXTS, per_item)
    assert [sorted(scores) for scores in batched] == [sorted(item) for item in per_item]
    assert_same(batched, [tc(text, item) for text, item in zip(TEXTS, per_item)])
    top = tc(TEXTS, labels, top_k=2)
    assert all(len(scores) == 2 for scores in top)
    assert_same(top, [tc(text, labels, top_k=2) for text in TEXTS])
    json.dumps(batched)


def test_qa_batch_equals_single(tasks):
    qa = tasks["qa"]
    questions = ["Where does Sally live?", "What is her job?"]
    context = "Sally lives in London. She is a doctor."
    assert_same(qa(questions, context), [qa(question, context) for question in questions])
    contexts = [context, "Bob lives in Paris."]
    prev = [[], [("Where does Sally live?", "London")]]
    assert_same(qa(questions, contexts, prev), [qa(q, c, p) for q, c, p in zip(questions, contexts, prev)])
    assert isinstance(qa(questions[0], context), str)


def test_text_generation_options_batch_equals_single(tasks):
    tg = tasks["text-generation"]
    assert_same(tg(TEXTS, max_length=4), [tg(text, max_length=4) for text in TEXTS])
    assert all(len(text) <= 4 for text in tg(TEXTS, max_length=4))
    generations = tg(TEXTS, num_generations=2)
    assert all(isinstance(item, list) and len(item) == 2 for item in generations)
    assert_same(generations, [tg(text, num_generations=2) for text in TEXTS])


@pytest.fixture
def image_paths(image_files):
    return [str(image_files[name]) for name in ("red", "green", "blue")]


def test_image_vectorisation_batch_equals_single(tasks, image_paths):
    iv = tasks["image-vectorisation"]
    batched = iv(image_paths)
    assert_same(batched, [iv(path) for path in image_paths])
    json.dumps(batched)
    tensor = iv(image_paths, return_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tuple(tensor.shape) == (3, 16)


def test_image_classification_batch_equals_single(tasks, image_paths):
    ic = tasks["image-classification"]
    labels = ["red", "green", "blue"]
    assert_same(ic(image_paths, labels), [ic(path, labels) for path in image_paths])
    assert_same(ic(image_paths, labels, top_k=1), [ic(path, labels, top_k=1) for path in image_paths])
    pil_images = [Image.open(path) for path in image_paths]
    assert_same(ic(pil_images, labels), ic(image_paths, labels))


def test_image_text_vectorisation_batch_equals_single(tasks, image_paths):
    itv = tasks["image-text-vectorisation"]
    texts = ["a red square", "a green square", "a blue square"]
    batched = itv(image_paths, texts)
    assert_same(batched, [itv(path, text) for path, text in zip(image_paths, texts)])
    assert itv(image=image_paths[0], text=texts[0]) == pytest.approx(batched[0], abs=1e-5)
    assert torch.tensor(batched).norm(dim=1).tolist() == pytest.approx([1.0] * 3, abs=1e-5)


def test_return_tensor_matches_lists(tasks):
    tv = tasks["text-vectorisation"]
    tensor = tv(TEXTS, return_tensor=True)
    assert isinstance(tensor, torch.Tensor)
    assert torch.allclose(tensor, torch.tensor(tv(TEXTS)), atol=1e-6)
    single = tv(TEXTS[0], return_tensor=True)
    assert isinstance(single, torch.Tensor) and single.tolist() == pytest.approx(tv(TEXTS[0]), abs=1e-6)


# -- finetuning the other tasks -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
@pytest.mark.parametrize("task_class", [bpcore.Emotion, bpcore.TextGeneration, bpcore.Summarisation])
def test_text_to_text_finetuning_learns_the_spec_example(tiny_plugin, seeded, task_class):
    task = task_class()
    params = {
        "input_text": ["I really liked the service I received!", "Meh, it was not impressive."],
        "output_text": ["positive", "negative"],
    }
    history = task.finetune(params, epochs=40, early_stopping_epochs=5, seed=0)
    assert history.train_loss[-1] < history.train_loss[0]
    assert task(params["input_text"]) == ["positive", "negative"]
    assert task("Meh, it was not impressive.") == "negative"


def test_text_to_text_options_reach_the_model(tiny_plugin, seeded):
    emotion = bpcore.Emotion()
    seen = []
    process = emotion.model.process_batch

    def spy(params, task):
        seen.append(params)
        return process(params, task)

    emotion.model.process_batch = spy
    with pytest.warns(BpcoreWarning):
        emotion.finetune(
            {"input_text": ["a", "b"], "output_text": ["x", "y"]},
            epochs=1,
            max_input_length=7,
            max_output_length=3,
        )
    assert seen and all(item["max_input_length"] == 7 and item["max_output_length"] == 3 for item in seen)
    assert {item["input"] for item in seen} == {"a", "b"} and {item["output"] for item in seen} == {"x", "y"}


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
def test_qa_finetuning_on_the_spec_example(tiny_plugin, seeded):
    qa = bpcore.QA()
    context = "Backprop is a Python library that makes training and using models easier."
    params = {
        "questions": [
            "What's Backprop?",
            "What language is it in?",
            "When was the Moog synthesizer invented?",
        ],
        "answers": ["A library", "Python", "1964"],
        "contexts": [context, context, "Bob Moog was a physicist. He invented the Moog synthesizer in 1964."],
        "prev_qas": [[], [("What's Backprop?", "A library")], []],
    }
    history = qa.finetune(params, epochs=40, early_stopping_epochs=5, seed=0)
    assert history.train_loss[-1] < history.train_loss[0]
    assert qa("What language is it in?", context, prev_qa=[("What's Backprop?", "A library")]) == "Python"
    assert qa(params["questions"], params["contexts"], params["prev_qas"]) == params["answers"]


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
def test_image_classification_finetuning(tiny_plugin, seeded, image_files):
    ic = bpcore.ImageClassification()
    names = ["red", "green", "blue", "red2", "green2", "blue2"]
    params = {"images": [str(image_files[name]) for name in names], "labels": ["red", "green", "blue"] * 2}
    history = ic.finetune(params, epochs=30, early_stopping_epochs=5, seed=0)
    assert history.train_loss[-1] < history.train_loss[0]
    predictions = ic(params["images"])
    assert [max(scores, key=scores.get) for scores in predictions] == params["labels"]
    assert set(predictions[0]) == {"red", "green", "blue"}


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
def test_image_multi_label_finetuning(tiny_plugin, seeded, image_files):
    ic = bpcore.ImageClassification()
    names = ["red", "green", "blue", "red2", "green2", "blue2"]
    labels = [["warm"], ["cool", "nature"], ["cool"], ["warm"], ["cool", "nature"], ["cool"]]
    history = ic.finetune(
        {"images": [str(image_files[n]) for n in names], "labels": labels},
        variant="multi_label",
        epochs=20,
        seed=0,
    )
    assert history.train_loss[-1] < history.train_loss[0]


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
@pytest.mark.parametrize("variant", ["triplet", "cosine_similarity"])
def test_image_vectorisation_finetuning_variants(tiny_plugin, seeded, image_files, variant):
    iv = bpcore.ImageVectorisation()
    paths = {name: str(path) for name, path in image_files.items()}
    if variant == "triplet":
        params = {
            "images": [paths[n] for n in ("red", "red2", "green", "green2", "blue")],
            "groups": [0, 0, 1, 1, 2],
        }
    else:
        params = {
            "imgs1": [paths["red"], paths["green"]],
            "imgs2": [paths["red2"], paths["blue"]],
            "similarity_scores": [1.0, 0.0],
        }
    before = iv(paths["red"])
    history = iv.finetune(params, variant=variant, epochs=10, seed=0)
    assert len(history) >= 1 and history.train_loss[-1] <= history.train_loss[0]
    assert iv(paths["red"]) != pytest.approx(before, abs=1e-6)


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
@pytest.mark.parametrize("variant", ["triplet", "cosine_similarity"])
def test_image_text_vectorisation_finetuning_variants(tiny_plugin, seeded, image_files, variant):
    itv = bpcore.ImageTextVectorisation()
    paths = {name: str(path) for name, path in image_files.items()}
    if variant == "triplet":
        params = {
            "images": [paths["red"], paths["red2"], paths["blue"]],
            "texts": [
                "Steel crowbar with angled beak, 300mm",
                "Crowbar tempered steel 300m angled",
                "Sturdy ceramic mug, microwave-safe",
            ],
            "groups": [0, 0, 1],
        }
    else:
        params = {
            "imgs1": [paths["red"], paths["blue"]],
            "imgs2": [paths["red2"], paths["green"]],
            "texts1": ["Steel crowbar with angled beak, 300mm", "Sturdy ceramic mug, microwave-safe"],
            "texts2": ["Crowbar tempered steel 300m angled", "Dad hat with funny ghost picture on the front"],
            "similarity_scores": [1.0, 0.0],
        }
    history = itv.finetune(params, variant=variant, epochs=5, seed=0)
    assert len(history) >= 1 and all(loss == loss for loss in history.train_loss)


def test_default_variants_follow_the_spec(tiny_plugin):
    assert next(iter(bpcore.TextVectorisation.variants)) == "cosine_similarity"
    assert next(iter(bpcore.ImageVectorisation.variants)) == "triplet"
    assert next(iter(bpcore.ImageTextVectorisation.variants)) == "triplet"
    assert next(iter(bpcore.TextClassification.variants)) == "single_label"
    assert next(iter(bpcore.ImageClassification.variants)) == "single_label"


def test_a_model_without_finetuning_support_is_refused(tiny_plugin, seeded):
    from tiny_models import PlainCallableModel

    tv = bpcore.TextVectorisation(PlainCallableModel())
    with pytest.raises(bpcore.TaskNotSupportedError, match="tiny-text"):
        tv.finetune({"texts1": ["a"], "texts2": ["b"], "similarity_scores": [1.0]})
