"""Inference of the generative tasks: qa, emotion, summarisation and text-generation on tiny models."""

from __future__ import annotations

import pytest
from tiny_hf import WORDS

import bpcore
from bp_hf import HFCausalLMTGModel, HFSeq2SeqTGModel, T5QASummaryEmotion
from bp_hf.t5_multitask import qa_input


class ShortT5(T5QASummaryEmotion):
    """The tiny random T5 never ends a text: these defaults keep its answers (and the tests) short."""

    task_generation_defaults = {
        "emotion": {"max_new_tokens": 12},
        "summarisation": {
            "max_new_tokens": 12,
            "num_beams": 4,
            "no_repeat_ngram_size": 3,
            "early_stopping": True,
        },
        "qa": {"max_new_tokens": 12},
    }


PROMPTS = ["the quick brown fox", "sally lives in london and bob lives in paris", "a"]


@pytest.fixture(scope="module")
def t5(t5_folder):
    return ShortT5(model_path=t5_folder)


@pytest.fixture(scope="module")
def gpt2(gpt2_folder):
    return HFCausalLMTGModel(model_path=gpt2_folder)


def test_emotion_and_summarisation_answer_a_string_per_text(t5):
    emotion, summarisation = bpcore.Emotion(t5), bpcore.Summarisation(t5)
    assert isinstance(emotion("i really liked the service"), str)
    assert isinstance(summarisation("this is a long document that contains plenty of words"), str)
    assert emotion(PROMPTS[1:]) == [emotion(text) for text in PROMPTS[1:]]


def test_the_task_prefixes_are_the_documented_formats(t5):
    assert t5.inputs_for({"text": ["hi"]}, "emotion") == ["emotion: hi"]
    assert t5.inputs_for({"text": ["hi"]}, "summarisation") == ["summarise: hi"]
    assert t5.inputs_for({"text": ["hi"]}, "text-generation") == ["hi"]
    assert (
        qa_input(
            "what language is it in", "backprop is a python library", [("what is backprop", "a library")]
        )
        == "q: what is backprop a: a library q: what language is it in c: backprop is a python library"
    )


def test_qa_single_batched_and_one_context_for_many_questions(t5):
    qa = bpcore.QA(t5)
    context = "sally lives in london. bob lives in paris."
    questions = ["where does sally live", "where does bob live"]
    single = [qa(question, context) for question in questions]
    assert all(isinstance(answer, str) for answer in single)
    assert qa(questions, context) == single
    assert qa(questions, [context, context], prev_qa=[[], []]) == single
    follow_up = qa("where does he live", context, prev_qa=[("who is bob", "a physicist")])
    assert isinstance(follow_up, str)


@pytest.mark.parametrize("model_name", ["t5", "gpt2"])
def test_a_batch_gives_the_same_greedy_answers_as_single_calls(model_name, request):
    model = request.getfixturevalue(model_name)
    tg = bpcore.TextGeneration(model)
    batch = tg(PROMPTS, max_length=8)
    assert batch == [tg(prompt, max_length=8) for prompt in PROMPTS]
    beams = tg(PROMPTS, max_length=6, num_beams=3, length_penalty=0.5, repetition_penalty=1.3)
    assert beams == [
        tg(p, max_length=6, num_beams=3, length_penalty=0.5, repetition_penalty=1.3) for p in PROMPTS
    ]


@pytest.mark.parametrize("model_name", ["t5", "gpt2"])
def test_every_generation_keyword(model_name, request):
    model = request.getfixturevalue(model_name)
    tg = bpcore.TextGeneration(model)
    sampling = {"temperature": 0.7, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.2, "do_sample": True}
    sampled = tg(PROMPTS, min_length=4, max_length=6, num_generations=3, **sampling)
    assert len(sampled) == 3 and all(len(generations) == 3 for generations in sampled)
    assert all(isinstance(text, str) for generations in sampled for text in generations)
    # Several generations without sampling come from a beam search: distinct, and repeatable.
    beams = tg("the quick brown fox", num_generations=2, num_beams=2, do_sample=False, max_length=5)
    assert len(beams) == 2 and beams == tg(
        "the quick brown fox", num_generations=2, do_sample=False, max_length=5
    )
    # max_length counts generated tokens only, whatever the prompt's length: greedy text grows with it.
    long_prompt = " ".join(["the cat"] * 20)
    short, longer = tg(long_prompt, max_length=2, min_length=2), tg(long_prompt, max_length=8, min_length=8)
    assert short and longer.startswith(short) and len(longer) > len(short)


@pytest.mark.parametrize("model_name", ["t5", "gpt2"])
def test_the_specs_values_temperature_zero_and_a_float_top_k(model_name, request):
    # Spec 3.4.8: temperature 0.0 is no randomness; top_k is typed float, and 0 is no limit.
    tg = bpcore.TextGeneration(request.getfixturevalue(model_name))
    greedy = tg(PROMPTS, max_length=6)
    assert tg(PROMPTS, max_length=6, temperature=0.0) == greedy
    assert tg(PROMPTS, max_length=6, temperature=0.0, do_sample=True, top_p=0.5) == greedy
    assert tg(PROMPTS, max_length=6, top_k=0, do_sample=False) == greedy
    sampled = tg(PROMPTS, max_length=6, top_k=5.0)
    assert len(sampled) == len(PROMPTS) and all(isinstance(text, str) for text in sampled)
    for options, field in (({"temperature": -0.5}, "temperature"), ({"top_k": 2.5}, "top_k")):
        with pytest.raises(bpcore.InputError) as caught:
            tg(PROMPTS[0], **options)
        assert caught.value.problems[0][0] == f"input.{field}"


def test_causal_generation_returns_only_the_continuation(gpt2):
    tg = bpcore.TextGeneration(gpt2)
    prompt = "sally lives in london and bob lives in paris"
    assert not tg(prompt, max_length=4).startswith(prompt)


def test_bad_generation_options_name_the_field():
    model = object.__new__(HFSeq2SeqTGModel)  # options are checked before the model runs
    from bp_hf.base import generation_arguments

    with pytest.raises(bpcore.InputError, match="input.beams"):
        generation_arguments({"beams": 2}, {})
    del model


def test_bad_task_input_is_rejected_by_the_task_with_the_field_named(t5):
    tg = bpcore.TextGeneration(t5)
    with pytest.raises(bpcore.InputError, match="temperature"):
        tg("hello", temperature=-1.0)  # 0 is allowed: the spec's "no randomness"
    with pytest.raises(bpcore.InputError, match="top_p"):
        tg("hello", top_p=1.5)
    with pytest.raises(bpcore.InputError, match=r"text\[1\]"):
        tg(["hello", 3])


def test_a_task_the_model_lacks_is_refused(gpt2):
    with pytest.raises(bpcore.TaskNotSupportedError):
        bpcore.Emotion(gpt2)
    with pytest.raises(bpcore.TaskNotSupportedError):
        gpt2({"text": ["hi"]}, task="emotion")


def test_a_long_context_is_split_into_overlapping_windows_never_truncated(short_t5_folder):
    model = ShortT5(short_t5_folder)
    context = " ".join(WORDS[20:100]) + " sally lives in london"  # distinct words: each window is findable
    question = "where does sally live"
    windows = model.context_windows(question, context, [])
    assert len(windows) > 1
    limit = model.max_input_length
    for window in windows:  # each window fits the model with the question: nothing is cut off
        assert len(model.encode([qa_input(question, window)], truncation=False)[0]["input_ids"]) <= limit
    assert windows[0].startswith(WORDS[20]) and windows[-1].endswith("sally lives in london")
    for first, second in zip(windows, windows[1:]):  # consecutive windows overlap
        assert first.split()[-1] in second.split()[:20]
        assert context.index(second) < context.index(first) + len(first)
    # The answer is the best-scoring window's answer.
    scored = model.generate(
        [qa_input(question, window) for window in windows],
        defaults=model.task_generation_defaults["qa"],
        with_scores=True,
    )
    best = max(scored, key=lambda pair: pair[1])[0]
    assert bpcore.QA(model)(question, context) == best
    # A short context is one window, the whole context.
    assert model.context_windows(question, "sally lives in london", []) == ["sally lives in london"]


def test_a_question_that_leaves_no_room_for_context_names_the_item(short_t5_folder):
    model = ShortT5(short_t5_folder)
    long_question = " ".join(["where"] * 60)
    with pytest.raises(bpcore.InputError, match=r"input.question\[1\]"):
        bpcore.QA(model)(["where", long_question], " ".join(["cat"] * 80))
