"""Calling a model directly, as spec 3.4 does: one item answers once, as the task would."""

from __future__ import annotations

import pytest
from PIL import Image
from tiny_models import TinyImageModel, TinyTextModel, TinyTextToTextModel

import bpcore
from bpcore.models import BaseModel


def test_a_single_text_gets_one_answer_not_one_per_character():
    model = TinyTextToTextModel()
    text = "This is pretty cool!"
    answer = model({"text": text}, task="emotion")
    assert answer == bpcore.Emotion(model)(text)
    assert isinstance(answer, str)
    assert model({"text": [text, "meh"]}, task="emotion") == bpcore.Emotion(model)([text, "meh"])


def test_the_task_defaults_to_the_model_call_signature():
    model = TinyTextToTextModel()
    assert model({"text": "once upon"}) == bpcore.TextGeneration(model)("once upon")


def test_vectors_and_return_tensor_follow_the_task():
    model = TinyTextModel()
    vector = model({"text": "a laptop"}, task="text-vectorisation")
    assert vector == bpcore.TextVectorisation(model)("a laptop")
    assert isinstance(vector[0], float)
    tensor = model({"text": ["a", "b"]}, task="text-vectorisation", return_tensor=True)
    assert tuple(tensor.shape) == (2, len(vector))


def test_an_image_path_is_decoded_for_a_direct_call(tmp_path):
    model = TinyImageModel()
    image = Image.new("RGB", (12, 9), (200, 30, 10))
    image.save(tmp_path / "red.png")
    from_path = model({"image": str(tmp_path / "red.png")}, task="image-vectorisation")
    assert from_path == model({"image": image}, task="image-vectorisation")
    assert from_path == bpcore.ImageVectorisation(model)(image)


def test_qa_history_keys_of_the_spec_are_used_not_ignored():
    model = TinyTextToTextModel()
    qa = bpcore.QA(model)
    history = [("Who is Sally?", "A girl"), ("Where is she?", "London")]
    spec_style = model(
        {
            "question": "Why?",
            "context": "Sally moved.",
            "prev_q": [q for q, _ in history],
            "prev_a": [a for _, a in history],
        },
        task="qa",
    )
    assert spec_style == qa("Why?", "Sally moved.", prev_qa=history)
    assert spec_style != qa("Why?", "Sally moved.")  # the history changes what the model sees
    batched = model(
        {"question": ["Why?"], "context": ["Sally moved."], "prev_q": [["Who?"]], "prev_a": [["Sally"]]},
        task="qa",
    )
    assert batched == qa(["Why?"], ["Sally moved."], prev_qa=[[("Who?", "Sally")]])


def test_history_lists_of_different_lengths_name_the_field():
    model = TinyTextToTextModel()
    with pytest.raises(bpcore.InputError, match="input.prev_q"):
        model({"question": "Why?", "context": "c", "prev_q": ["a", "b"], "prev_a": ["x"]}, task="qa")


def test_bad_direct_input_is_a_bpcore_error_naming_the_field():
    model = TinyTextModel()
    with pytest.raises(bpcore.InputTypeError, match="input.text"):
        model({"text": 5}, task="text-vectorisation")
    with pytest.raises(bpcore.InputError, match="colour"):
        model({"text": "a", "colour": "red"}, task="text-vectorisation")


def test_the_spec_example_model_answers_as_it_likes():
    # Spec 3.4: a model that declares no tasks handles its own input, single or not.
    class MyModel(BaseModel):
        def __call__(self, task_input, task="emotion"):
            if task == "emotion":
                return "admiration"
            raise ValueError("Unsupported task!")

    assert MyModel()({"text": "This is pretty cool!"}, task="emotion") == "admiration"


def test_a_task_still_hands_the_model_batched_input():
    seen = []

    class Recorder(BaseModel):
        def __call__(self, task_input, task="emotion"):
            seen.append(task_input["text"])
            return ["calm" for _ in task_input["text"]]

    model = Recorder(tasks=["emotion"])
    assert bpcore.Emotion(model)("hi") == "calm"
    assert model({"text": "hi"}, task="emotion") == "calm"
    assert seen == [["hi"], ["hi"]]
