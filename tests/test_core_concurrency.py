"""Concurrent calls on one task answer exactly as calls made one by one, and finetuning never mixes with them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from core_helpers import state_of
from tiny_models import TinyTextModel

import bpcore
from bpcore.errors import TrainingError

TEXTS = [f"sentence number {i} about bread and cats" for i in range(24)]


class SlowDropoutVectoriser(TinyTextModel):
    """Dropout on the embeddings, and a forward pass long enough for calls to overlap."""

    def __init__(self, dim=None, name=None, description=None, tasks=None, details=None, device=None):
        super().__init__(dim, name, description, tasks, details, device)
        self.dropout = torch.nn.Dropout(0.5)

    def embed(self, texts, max_length=None):
        vectors = super().embed(texts, max_length)
        time.sleep(0.002)  # a real model's forward takes milliseconds: calls overlap
        return self.dropout(vectors)

    def __call__(self, task_input, task="text-vectorisation", return_tensor=False):
        vectors = self.embed(task_input["text"])
        if task == "text-vectorisation":
            return vectors if return_tensor else vectors.tolist()
        return self.classify(vectors, task_input)

    def training_step(self, batch, task):
        vectors = self.dropout(self.embedding(batch["ids"], batch["offsets"]))
        logits = self.head(vectors)
        return torch.nn.functional.cross_entropy(logits, batch["labels"]) if "labels" in batch else logits


class DropoutPlugin:
    @bpcore.hookimpl
    def register_models(self, register):
        register(
            name="slow-dropout",
            factory="test_core_concurrency:SlowDropoutVectoriser",
            tasks=["text-vectorisation", "text-classification"],
            finetunable=["text-classification"],
            description="dropout, slowly",
        )


@pytest.fixture
def dropout_model_name():
    name = bpcore.register_plugin(DropoutPlugin(), name="dropout-plugin")
    yield "slow-dropout"
    bpcore.unregister_plugin(name)


def max_difference(first, second) -> float:
    return float((torch.tensor(first) - torch.tensor(second)).abs().max())


def test_a_registered_model_is_handed_out_in_eval_mode(dropout_model_name):
    # nn.Module's default is training mode: the factory's model comes back in it.
    assert SlowDropoutVectoriser().training
    assert not bpcore.TextVectorisation(dropout_model_name).model.training
    assert not bpcore.models.AutoModel.from_pretrained(dropout_model_name).training


def test_a_loaded_model_is_handed_out_in_eval_mode(tmp_path):
    model = TinyTextModel(name="tiny-text")
    model.train()
    bpcore.save(model, path=tmp_path / "saved")
    assert not bpcore.load(tmp_path / "saved").training


def test_a_thread_pool_gives_the_sequential_answers(dropout_model_name):
    tv = bpcore.TextVectorisation(dropout_model_name)
    sequential = [tv(text) for text in TEXTS]
    for _ in range(10):
        with ThreadPoolExecutor(6) as pool:
            parallel = list(pool.map(tv, TEXTS))
        assert max_difference(sequential, parallel) == 0.0
    assert not tv.model.training


def test_a_model_the_user_put_in_training_mode_is_switched_to_eval_once(dropout_model_name):
    tv = bpcore.TextVectorisation(dropout_model_name)
    expected = [tv(text) for text in TEXTS]
    tv.model.train()
    with ThreadPoolExecutor(6) as pool:
        parallel = list(pool.map(tv, TEXTS))
    assert max_difference(expected, parallel) == 0.0
    assert not tv.model.training, "the first call leaves the model in eval mode"


def classification_data():
    texts = [f"{word} {i}" for i in range(12) for word in ("sunny warm", "cold rainy")]
    labels = ["good" if text.startswith("sunny") else "bad" for text in texts]
    return {"texts": texts, "labels": labels}


def finetune(task) -> list[float]:
    history = task.finetune(
        classification_data(), validation_split=0.25, epochs=3, batch_size=4, early_stopping_epochs=0, seed=0
    )
    return history.train_loss + history.val_loss


def test_finetuning_while_threads_call_the_task_ends_as_finetuning_alone(dropout_model_name):
    alone = bpcore.TextClassification(dropout_model_name)
    torch.manual_seed(0)
    alone.model.load_state_dict(state_of(SlowDropoutVectoriser()))
    expected = finetune(alone)

    busy = bpcore.TextClassification(dropout_model_name)
    torch.manual_seed(0)
    busy.model.load_state_dict(state_of(SlowDropoutVectoriser()))
    labels = ["good", "bad"]
    before = busy(TEXTS[0], labels=labels)
    stop = threading.Event()
    answers: list[dict[str, float]] = []

    def keep_calling() -> None:
        while not stop.is_set():
            answers.append(busy(TEXTS[0], labels=labels))

    threads = [threading.Thread(target=keep_calling) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.05)  # calls are in flight when the finetune starts
        losses = finetune(busy)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    after = busy(TEXTS[0], labels=labels)
    assert losses == expected
    assert not busy.model.training, "finetuning leaves the model in eval mode"
    # Every call was answered by the weights before or after the finetune, never in between.
    assert answers and all(answer in (before, after) for answer in answers)


def test_finetuning_from_inside_a_call_of_the_same_model_is_refused():
    from bpcore.model_lock import lock_for

    lock = lock_for(object.__new__(TinyTextModel))
    with lock.reading(), pytest.raises(TrainingError, match="from inside one of its own calls"):
        with lock.writing():
            pass


def test_a_save_during_a_finetune_waits_for_its_best_weights(dropout_model_name, tmp_path):
    classifier = bpcore.TextClassification(dropout_model_name)
    started, saved = threading.Event(), {}

    def save_when_training_starts() -> None:
        started.wait(timeout=60)
        saved["folder"] = bpcore.save(classifier.model, path=tmp_path / "saved")

    original = classifier.model.training_step

    def training_step(batch, task):
        started.set()
        return original(batch, task)

    classifier.model.training_step = training_step
    saver = threading.Thread(target=save_when_training_starts)
    saver.start()
    finetune(classifier)
    saver.join(timeout=60)
    loaded = bpcore.TextClassification(bpcore.load(saved["folder"]))
    assert loaded(TEXTS[0]) == classifier(TEXTS[0]), (
        "the saved model is the finetuned one, not a half-trained one"
    )
