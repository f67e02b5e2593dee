"""Bad input and bad finetuning params, through the public task API: clear bpcore errors naming the field."""

from __future__ import annotations

import math

import pytest

import bpcore

TV = "text-vectorisation"

PAIRS = {"texts1": ["a cat", "a dog"], "texts2": ["the cat", "a car"], "similarity_scores": [1.0, 0.0]}


@pytest.fixture
def tv(tiny_plugin):
    return bpcore.TextVectorisation("tiny-text")


@pytest.fixture
def tc(tiny_plugin):
    return bpcore.TextClassification("tiny-text")


def fields_of(error: bpcore.InputError) -> list[str]:
    return [field for field, _ in error.problems]


def test_input_errors_are_value_errors_and_type_errors_are_type_errors():
    assert issubclass(bpcore.InputError, ValueError)
    assert issubclass(bpcore.InputTypeError, bpcore.InputError)
    assert issubclass(bpcore.InputTypeError, TypeError)
    assert issubclass(bpcore.InputError, bpcore.BpcoreError)


# -- finetuning params --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "error_type"),
    [
        ({"texts2": ["b"], "similarity_scores": [1.0]}, "params.texts1", bpcore.InputError),
        (
            {"texts1": ["a", 1], "texts2": ["b", "c"], "similarity_scores": [1.0, 0.0]},
            "params.texts1[1]",
            bpcore.InputTypeError,
        ),
        (
            {"texts1": "a text", "texts2": ["b"], "similarity_scores": [1.0]},
            "params.texts1",
            bpcore.InputTypeError,
        ),
        (
            {"texts1": ["a", "b"], "texts2": ["c"], "similarity_scores": [1.0, 0.0]},
            "params.texts2",
            bpcore.InputError,
        ),
        ({"texts1": [], "texts2": [], "similarity_scores": []}, "params.texts1", bpcore.InputError),
        (
            {"texts1": ["a", "b"], "texts2": ["c", "d"], "similarity_scores": [1.0, math.nan]},
            "params.similarity_scores[1]",
            bpcore.InputError,
        ),
        (
            {"texts1": ["a", "b"], "texts2": ["c", "d"], "similarity_scores": [1.5, 0.0]},
            "params.similarity_scores[0]",
            bpcore.InputError,
        ),
        (
            {"texts1": ["a", "b"], "texts2": ["c", "d"], "similarity_scores": [1.0, "high"]},
            "params.similarity_scores[1]",
            bpcore.InputTypeError,
        ),
        (
            {"texts1": ["a", " "], "texts2": ["c", "d"], "similarity_scores": [1.0, 0.0]},
            "params.texts1[1]",
            bpcore.InputError,
        ),
        ({**PAIRS, "scores": [1.0]}, "params", bpcore.InputError),
    ],
    ids=[
        "missing-key",
        "int-in-text-list",
        "string-for-list",
        "different-lengths",
        "empty",
        "nan-score",
        "score-above-one",
        "string-score",
        "blank-text",
        "unknown-key",
    ],
)
def test_bad_pair_params(tv, params, field, error_type):
    with pytest.raises(error_type) as caught:
        tv.finetune(params, epochs=1)
    error = caught.value
    assert field in fields_of(error) or any(name.startswith(field) for name in fields_of(error)), (
        error.problems
    )
    assert field in str(error)


@pytest.mark.parametrize(
    ("groups", "message"),
    [([0, 0, 0], "two different groups"), ([0, 1, 2], "at least two members"), ([0, None, 1], "group id")],
    ids=["single-group", "no-pair", "bad-group-id"],
)
def test_bad_triplet_groups(tv, groups, message):
    with pytest.raises(bpcore.InputError, match=message) as caught:
        tv.finetune({"texts": ["a", "b", "c"], "groups": groups}, variant="triplet", epochs=1)
    assert any(field.startswith("params.groups") for field in fields_of(caught.value))


def test_unknown_variant(tv):
    with pytest.raises(bpcore.InputError, match="variant") as caught:
        tv.finetune(PAIRS, variant="contrastive", epochs=1)
    assert "triplet" in str(caught.value) and "cosine_similarity" in str(caught.value)


def test_unknown_finetune_keyword(tv, tc):
    with pytest.raises(bpcore.InputError, match="'lr'"):
        tv.finetune(PAIRS, lr=0.1)
    with pytest.raises(bpcore.InputError, match="max_input_length"):
        tc.finetune({"texts": ["a", "b"], "labels": ["x", "y"]}, max_input_length=10)


def test_bad_finetune_option_value(tc):
    with pytest.raises(bpcore.InputError, match="max_length"):
        tc.finetune({"texts": ["a", "b"], "labels": ["x", "y"]}, max_length=0)


def test_params_must_be_a_dict(tv):
    with pytest.raises(bpcore.InputTypeError, match="params"):
        tv.finetune([["a", "b", 1.0]])


def test_variant_params_schema_follows_the_variant(tv):
    # Pair params given to the triplet variant: the triplet keys are missing, the pair keys unknown.
    with pytest.raises(bpcore.InputError) as caught:
        tv.finetune(PAIRS, variant="triplet", epochs=1)
    assert "params.texts" in fields_of(caught.value) and "params.groups" in fields_of(caught.value)


def test_text_classification_params(tc):
    with pytest.raises(bpcore.InputError) as caught:
        tc.finetune({"texts": ["a", "b", "c"], "labels": ["x", "y"]}, epochs=1)
    assert "params.labels" in str(caught.value)
    with pytest.raises(bpcore.InputTypeError, match=r"params\.labels\[1\]"):
        tc.finetune({"texts": ["a", "b"], "labels": ["x", 2]}, epochs=1)
    with pytest.raises(bpcore.InputError, match=r"params\.labels\[0\]"):
        tc.finetune({"texts": ["a", "b"], "labels": ["", "y"]}, epochs=1)
    # multi-label takes a list of labels per text
    with pytest.raises(bpcore.InputTypeError, match=r"params\.labels\[0\]"):
        tc.finetune({"texts": ["a", "b"], "labels": ["x", "y"]}, variant="multi_label", epochs=1)


def test_text_to_text_params(tiny_plugin):
    emotion = bpcore.Emotion("tiny-t2t")
    with pytest.raises(bpcore.InputError, match="params.output_text"):
        emotion.finetune({"input_text": ["I liked it", "meh"], "output_text": ["positive"]})
    with pytest.raises(bpcore.InputError, match="params.input_text"):
        emotion.finetune({"output_text": ["positive"]})
    qa = bpcore.QA("tiny-t2t")
    with pytest.raises(bpcore.InputError, match="params.prev_qas"):
        qa.finetune(
            {"questions": ["q1", "q2"], "answers": ["a1", "a2"], "contexts": ["c1", "c2"], "prev_qas": [[]]}
        )
    with pytest.raises(bpcore.InputError, match=r"params\.prev_qas\[1\]"):
        qa.finetune(
            {
                "questions": ["q1", "q2"],
                "answers": ["a1", "a2"],
                "contexts": ["c1", "c2"],
                "prev_qas": [[], "q a"],
            }
        )


def test_image_params_report_unreadable_images(tiny_plugin, image_files, tmp_path):
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("plain text")
    ic = bpcore.ImageClassification("tiny-image")
    images = [str(image_files["red"]), str(not_an_image)]
    with pytest.raises(bpcore.InputError, match=r"params\.images\[1\]"):
        ic.finetune({"images": images, "labels": ["red", "text"]}, epochs=1)
    iv = bpcore.ImageVectorisation("tiny-image")
    with pytest.raises(bpcore.InputError, match=r"params\.imgs2\[0\]"):
        iv.finetune(
            {
                "imgs1": [str(image_files["red"])],
                "imgs2": [str(tmp_path / "gone.png")],
                "similarity_scores": [1.0],
            },
            variant="cosine_similarity",
            epochs=1,
        )
    with pytest.raises(bpcore.InputTypeError, match=r"params\.images\[0\]"):
        iv.finetune({"images": [3, str(image_files["red"])], "groups": [0, 0]}, epochs=1)


# -- inference input ----------------------------------------------------------------------------


def test_inference_input_errors_name_the_item(tv, tc):
    with pytest.raises(bpcore.InputTypeError) as caught:
        tv(["fine", 3, "also fine"])
    assert fields_of(caught.value) == ["input.text[1]"]
    with pytest.raises(bpcore.InputTypeError, match=r"input\.text"):
        tv(42)
    with pytest.raises(bpcore.InputError, match=r"input\.text"):
        tv([])
    with pytest.raises(bpcore.InputError, match=r"input\.labels"):
        tc(["one", "two"], [["a", "b"]])
    with pytest.raises(bpcore.InputError, match=r"input\.labels\[0\]"):
        tc("text", ["same", "same"])
    with pytest.raises(bpcore.InputError, match=r"input\.top_k"):
        tc("text", ["a", "b"], top_k=-1)
    with pytest.raises(bpcore.InputTypeError, match=r"input\.labels\[0\]\[1\]"):
        tc("text", ["a", 5])


def test_text_generation_options_are_checked(tiny_plugin):
    tg = bpcore.TextGeneration("tiny-t2t")
    with pytest.raises(bpcore.InputError, match=r"input\.temperature"):
        tg("Once upon a time", temperature=-0.1)  # 0 is the spec's "no randomness"
    with pytest.raises(bpcore.InputError, match=r"input\.top_k"):
        tg("Once upon a time", top_k=2.5)  # typed float by the spec, but a whole number
    with pytest.raises(bpcore.InputError, match=r"input\.min_length"):
        tg("Once upon a time", min_length=10, max_length=5)
    with pytest.raises(bpcore.InputTypeError, match=r"input\.max_length"):
        tg("Once upon a time", max_length="long")
    with pytest.raises(bpcore.InputTypeError, match=r"input\.do_sample"):
        tg("Once upon a time", do_sample="yes")


def test_qa_input_errors(tiny_plugin):
    qa = bpcore.QA("tiny-t2t")
    with pytest.raises(bpcore.InputError, match=r"input\.context"):
        qa(["Where?", "When?"], ["Only one context"])
    with pytest.raises(bpcore.InputTypeError, match=r"input\.question\[1\]"):
        qa(["Where?", None], "Sally lives in London.")


def test_image_inference_errors_name_the_item(tiny_plugin, image_files, tmp_path):
    iv = bpcore.ImageVectorisation("tiny-image")
    with pytest.raises(bpcore.InputError) as caught:
        iv([str(image_files["red"]), str(tmp_path / "missing.png")])
    assert fields_of(caught.value) == ["input.image[1]"]
    with pytest.raises(bpcore.InputTypeError, match=r"input\.image\[0\]"):
        iv([b"raw bytes"])
    itv = bpcore.ImageTextVectorisation("tiny-image")
    with pytest.raises(bpcore.InputError, match=r"input\.text"):
        itv([str(image_files["red"]), str(image_files["blue"])], ["only one text"])


@pytest.mark.parametrize(
    "call",
    [
        lambda task: task(None),
        lambda task: task({"text": "a"}),
        lambda task: task.finetune(None),
        lambda task: task.finetune({"texts1": None, "texts2": None, "similarity_scores": None}),
        lambda task: task.finetune({"texts1": [["nested"]], "texts2": ["b"], "similarity_scores": [1.0]}),
        lambda task: task.finetune({"texts1": ["a"], "texts2": ["b"], "similarity_scores": [True]}),
    ],
    ids=["none", "dict", "params-none", "params-values-none", "nested-list", "bool-score"],
)
def test_nothing_leaks_raw_python_errors(tv, call):
    with pytest.raises(bpcore.InputError):
        call(tv)
