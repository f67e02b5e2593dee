"""Finetuning the generative tasks: tiny models learn short targets; losses fall; labels are masked."""

from __future__ import annotations

import warnings

import pytest
import torch

import bpcore
from bp_hf import HFCausalLMTGModel, HFSeq2SeqTGModel, T5QASummaryEmotion
from bp_hf.generation import IGNORE_INDEX

SENTIMENT = {
    "input_text": [
        "i really liked the service",
        "meh it was not impressive",
        "what a wonderful film",
        "awful game",
    ],
    "output_text": ["positive", "negative", "joy", "anger"],
}


def fast_optimizer(task, lr=1e-2):
    """A high learning rate, so a tiny model memorises a handful of examples in a few seconds."""
    return lambda: torch.optim.AdamW(task.model.parameters(), lr=lr)


def memorise(task, params, epochs=40, lr=1e-2, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # validating on the training data is the point here
        return task.finetune(
            params,
            validation_split=0,
            epochs=epochs,
            batch_size=4,
            early_stopping_epochs=0,
            configure_optimizers=fast_optimizer(task, lr),
            seed=0,
            **options,
        )


def test_t5_learns_to_reproduce_short_emotion_targets_and_saves_them(t5_folder, copy_folder, tmp_path):
    emotion = bpcore.Emotion(T5QASummaryEmotion(copy_folder(t5_folder)))
    history = memorise(emotion, SENTIMENT, max_input_length=16, max_output_length=4)
    # The eval-mode loss on its own data at the best epoch (the last epoch's train loss is noisy: dropout).
    assert min(history.val_loss) < history.train_loss[0] / 10
    learned = emotion(SENTIMENT["input_text"])
    assert learned == SENTIMENT["output_text"]

    saved = bpcore.save(emotion.model, "tiny-emotion")
    loaded = bpcore.Emotion(bpcore.load(saved))
    assert loaded(SENTIMENT["input_text"]) == learned
    assert loaded.model.name == "tiny-emotion"


def test_gpt2_learns_to_continue_prompts_with_their_targets_and_saves_them(gpt2_folder, copy_folder):
    tg = bpcore.TextGeneration(HFCausalLMTGModel(copy_folder(gpt2_folder)))
    memorise(tg, SENTIMENT, epochs=40)
    learned = tg(SENTIMENT["input_text"], max_length=5)
    assert [text.strip() for text in learned] == SENTIMENT["output_text"]
    assert learned == [tg(text, max_length=5) for text in SENTIMENT["input_text"]]

    loaded = bpcore.TextGeneration(bpcore.load(bpcore.save(tg.model, "tiny-gpt2")))
    assert loaded(SENTIMENT["input_text"], max_length=5) == learned


def test_qa_learns_to_use_previous_questions_and_answers(t5_folder, copy_folder):
    qa = bpcore.QA(T5QASummaryEmotion(copy_folder(t5_folder)))
    context = "sally lives in london. bob lives in paris."
    params = {
        "questions": ["where does she live", "where does he live", "who is bob"],
        "answers": ["london", "paris", "a physicist"],
        "contexts": [context, context, "bob moog was a physicist"],
        "prev_qas": [[("who is sally", "sally")], [("who is bob", "bob")], []],
    }
    memorise(qa, params, epochs=60, lr=3e-3)
    assert qa("where does she live", context, prev_qa=[("who is sally", "sally")]) == "london"
    assert qa("where does he live", context, prev_qa=[("who is bob", "bob")]) == "paris"
    assert qa(
        ["where does she live", "who is bob"],
        [context, "bob moog was a physicist"],
        prev_qa=[[("who is sally", "sally")], []],
    ) == ["london", "a physicist"]


def test_summarisation_validation_loss_falls_with_the_default_optimizer(t5_folder, copy_folder):
    summarise = bpcore.Summarisation(T5QASummaryEmotion(copy_folder(t5_folder)))
    texts = [
        f"this is a long news article about {topic} and the happenings of {topic}"
        for topic in ("football", "the election", "music", "the weather", "computer science", "food")
    ]
    summaries = [text.split("about ")[1].split(" and")[0] for text in texts]
    history = summarise.finetune(
        {"input_text": texts * 2, "output_text": summaries * 2},
        validation_split=(list(range(12))[:10], [10, 11]),
        epochs=4,
        batch_size=4,
        early_stopping_epochs=0,
        seed=0,
    )
    assert history.val_loss[-1] < history.val_loss[0]


def test_seq2seq_batches_mask_target_padding(t5_folder):
    model = HFSeq2SeqTGModel(t5_folder)
    items = [
        model.process_batch(
            {"input": "i liked it", "output": "positive", "max_input_length": 8, "max_output_length": 4},
            task="text-generation",
        ),
        model.process_batch(
            {"input": "meh", "output": "a b c d e f", "max_input_length": 8, "max_output_length": 4},
            task="text-generation",
        ),
    ]
    batch = model.collate_batch(items, task="text-generation")
    labels = batch["labels"]
    assert labels.shape == (2, 4)  # the longer target is truncated to max_output_length
    assert (labels[0] == IGNORE_INDEX).sum() > 0 and (labels[1] != IGNORE_INDEX).all()
    assert labels[0, 0].item() == model.tokenizer("positive")["input_ids"][0]
    assert model.training_step(batch, task="text-generation").ndim == 0


def test_causal_batches_learn_only_the_target_and_its_end(gpt2_folder):
    model = HFCausalLMTGModel(gpt2_folder)
    items = [
        model.process_batch(
            {"input": prompt, "output": target, "max_input_length": 16, "max_output_length": 8}
        )
        for prompt, target in (("i really liked the service", "positive"), ("meh", "negative"))
    ]
    batch = model.collate_batch(items, task="text-generation")
    eos = model.tokenizer.eos_token_id
    for row, (prompt, target) in enumerate((("i really liked the service", "positive"), ("meh", "negative"))):
        learned = [token for token in batch["labels"][row].tolist() if token != IGNORE_INDEX]
        assert learned == model.tokenizer(target, add_special_tokens=False)["input_ids"] + [eos]
        prompt_length = len(model.tokenizer(prompt)["input_ids"])
        assert (batch["labels"][row, :prompt_length] == IGNORE_INDEX).all()
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_bad_finetuning_params_name_the_field_and_item(t5_folder):
    emotion = bpcore.Emotion(T5QASummaryEmotion(t5_folder))
    with pytest.raises(bpcore.InputError, match="max_output_length"):
        emotion.finetune(SENTIMENT, max_output_length=0)
    with pytest.raises(bpcore.InputError, match=r"output_text\[1\]"):
        emotion.finetune({"input_text": ["a", "b"], "output_text": ["x", ""]})
    with pytest.raises(bpcore.InputError, match="output_text"):
        emotion.finetune({"input_text": ["a", "b"], "output_text": ["x"]})
    qa = bpcore.QA(T5QASummaryEmotion(t5_folder))
    with pytest.raises(bpcore.InputError, match="prev_qas"):
        qa.finetune({"questions": ["q"], "answers": ["a"], "contexts": ["c"], "prev_qas": [[], []]})
