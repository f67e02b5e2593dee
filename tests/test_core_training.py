"""The finetuning loop, driven through the tasks: splits, tiny data, early stopping, overrides, seeds, errors."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from core_helpers import same_state, state_of
from tiny_models import TinyTextModel, collate_ids, trigram_ids
from torch.utils.data import DataLoader

import bpcore
from bpcore.training import BpcoreWarning

TV = "text-vectorisation"

# Each pair has its own score, so a step can tell which examples a batch holds from its targets.
COUNT = 20
PAIR_PARAMS = {
    "texts1": [f"product number {i} in red" for i in range(COUNT)],
    "texts2": [f"the red product {i}" if i % 2 else f"an unrelated thing {i}" for i in range(COUNT)],
    "similarity_scores": [
        round(0.9 - i / 50, 2) if i % 2 else round(-0.2 + i / 100, 2) for i in range(COUNT)
    ],
}

CLASSIFICATION = {
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
    "labels": ["politics"] * 4 + ["science"] * 4 + ["film"] * 4,
}


@pytest.fixture
def tv(tiny_plugin, seeded):
    return bpcore.TextVectorisation("tiny-text")


class Recorder:
    """A custom step that wraps the task's own step and records what it sees."""

    def __init__(self, task, inner=None):
        self.task = task
        self.inner = inner or task.step_cosine
        self.calls: list[tuple[bool, list[float]]] = []
        self.eval_snapshots: list[dict[str, torch.Tensor]] = []

    def __call__(self, batch, batch_idx):
        training = self.task.model.training
        if not training and batch_idx == 0:
            # The weights this epoch is validated with.
            self.eval_snapshots.append(state_of(self.task.model))
        self.calls.append((training, [round(float(t), 2) for t in batch["targets"]]))
        return self.inner(batch, batch_idx)

    def targets(self, training: bool) -> list[float]:
        return [target for mode, targets in self.calls if mode is training for target in targets]


# -- validation split --------------------------------------------------------------------------


def test_validation_split_fraction_holds_out_examples(tv):
    recorder = Recorder(tv)
    history = tv.finetune(
        PAIR_PARAMS, validation_split=0.25, epochs=2, early_stopping_epochs=0, seed=1, step=recorder
    )
    assert history.validated_on == "validation split"
    assert len(history) == 2
    per_epoch_train = len(recorder.targets(True)) / 2
    per_epoch_val = len(recorder.targets(False)) / 2
    assert (per_epoch_train, per_epoch_val) == (15, 5)
    assert set(recorder.targets(True)).isdisjoint(recorder.targets(False))
    assert set(recorder.targets(True)) | set(recorder.targets(False)) == set(PAIR_PARAMS["similarity_scores"])


def test_validation_split_as_explicit_indices(tv):
    train, val = list(range(0, 14)), [14, 15, 16, 17, 18, 19]
    recorder = Recorder(tv)
    history = tv.finetune(PAIR_PARAMS, validation_split=(train, val), epochs=1, seed=1, step=recorder)
    assert history.validated_on == "validation split"
    scores = PAIR_PARAMS["similarity_scores"]
    assert sorted(recorder.targets(False)) == sorted(scores[i] for i in val)
    assert sorted(recorder.targets(True)) == sorted(scores[i] for i in train)


@pytest.mark.parametrize(
    ("split", "field"),
    [
        (1.5, "validation_split"),
        (-0.1, "validation_split"),
        ("0.2", "validation_split"),
        (([0, 1], [99]), "validation_split.val_indices"),
        (([], [0, 1]), "validation_split.train_indices"),
        (([0], [1], [2]), "validation_split"),
    ],
)
def test_bad_validation_split(tv, split, field):
    with pytest.raises(bpcore.InputError) as caught:
        tv.finetune(PAIR_PARAMS, validation_split=split, epochs=1)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("epochs", 0),
        ("epochs", "3"),
        ("epochs", 2.0),
        ("batch_size", 0),
        ("batch_size", 1.5),
        ("early_stopping_epochs", -1),
    ],
)
def test_bad_loop_arguments(tv, keyword, value):
    with pytest.raises(bpcore.InputError) as caught:
        tv.finetune(PAIR_PARAMS, **{keyword: value})
    assert caught.value.field == keyword


# -- tiny data ---------------------------------------------------------------------------------


def test_three_items_validate_on_training_data_with_a_warning(tiny_plugin, seeded):
    tv = bpcore.TextVectorisation("tiny-text")
    params = {
        "texts": [
            "I went to the store and bought some bread",
            "I bought bread from the store",
            "I'm going to go walk my dog",
        ],
        "groups": [0, 0, 1],
    }
    with pytest.warns(BpcoreWarning, match="training data"):
        history = tv.finetune(params, variant="triplet", epochs=2)
    assert history.validated_on == "training data"
    assert len(history) >= 1 and all(math.isfinite(loss) for loss in history.train_loss + history.val_loss)

    tc = bpcore.TextClassification("tiny-text")
    with pytest.warns(BpcoreWarning):
        history = tc.finetune(
            {
                "texts": [
                    "This is a political news article",
                    "This is a computer science research paper",
                    "This is a movie review",
                ],
                "labels": ["Politics", "Science", "Entertainment"],
            },
            epochs=2,
        )
    assert history.validated_on == "training data"
    assert set(tc("This is a movie review")) == {"Politics", "Science", "Entertainment"}


def test_enough_data_does_not_warn(tv):
    with warnings.catch_warnings():
        warnings.simplefilter("error", BpcoreWarning)
        history = tv.finetune(PAIR_PARAMS, validation_split=0.2, epochs=1, seed=0)
    assert history.validated_on == "validation split"


# -- early stopping ----------------------------------------------------------------------------


def test_early_stopping_restores_the_best_weights(tv):
    recorder = Recorder(tv)
    # An optimizer that climbs the loss: validation gets worse after the first epoch.
    history = tv.finetune(
        PAIR_PARAMS,
        validation_split=0.25,
        epochs=10,
        early_stopping_epochs=2,
        batch_size=4,
        seed=3,
        step=recorder,
        configure_optimizers=lambda: torch.optim.SGD(tv.model.parameters(), lr=5.0, maximize=True),
    )
    assert history.best_epoch == 1
    assert history.stopped_early and len(history) == 3
    assert history.val_loss[0] < history.val_loss[1] <= history.val_loss[2]
    assert len(recorder.eval_snapshots) == 3
    final = state_of(tv.model)
    assert same_state(final, recorder.eval_snapshots[0])
    assert not same_state(final, recorder.eval_snapshots[-1])


def test_best_epoch_weights_are_kept_when_training_runs_all_epochs(tv):
    recorder = Recorder(tv)
    history = tv.finetune(
        PAIR_PARAMS, validation_split=0.25, epochs=4, early_stopping_epochs=0, seed=3, step=recorder
    )
    assert len(history) == 4 and not history.stopped_early
    best = min(range(4), key=lambda i: history.val_loss[i])
    assert history.best_epoch == best + 1
    assert same_state(state_of(tv.model), recorder.eval_snapshots[best])
    assert not tv.model.training


def test_early_stopping_epochs_zero_never_stops(tv):
    history = tv.finetune(
        PAIR_PARAMS,
        epochs=4,
        early_stopping_epochs=0,
        seed=3,
        configure_optimizers=lambda: torch.optim.SGD(tv.model.parameters(), lr=5.0, maximize=True),
    )
    assert len(history) == 4 and not history.stopped_early
    assert history.best_epoch == 1


# -- overrides ---------------------------------------------------------------------------------


def test_custom_step_and_optimizer_are_used(tv):
    recorder = Recorder(tv)
    made = []

    def configure_optimizers():
        optimizer = torch.optim.SGD(tv.model.parameters(), lr=0.1)
        made.append(optimizer)
        return optimizer

    history = tv.finetune(
        PAIR_PARAMS,
        validation_split=0.25,
        epochs=2,
        batch_size=5,
        early_stopping_epochs=0,
        seed=2,
        step=recorder,
        configure_optimizers=configure_optimizers,
    )
    assert len(made) == 1
    assert made[0].state_dict()["param_groups"][0]["lr"] == 0.1
    # 15 training examples in batches of 5, 5 validation examples in one batch, for 2 epochs
    assert [training for training, _ in recorder.calls] == ([True] * 3 + [False]) * 2
    assert history.batch_size == 5


def test_model_configure_optimizers_is_the_default(tiny_plugin, seeded):
    class CountingModel(TinyTextModel):
        optimizers_made = 0

        def configure_optimizers(self):
            type(self).optimizers_made += 1
            return torch.optim.SGD(self.parameters(), lr=0.01)

    tv = bpcore.TextVectorisation(CountingModel())
    tv.finetune(PAIR_PARAMS, epochs=1, seed=0)
    assert CountingModel.optimizers_made == 1


def text_loader(texts: list[str], marker: str, batch_size: int = 3) -> DataLoader:
    def collate(items: list[str]) -> dict[str, object]:
        ids = [torch.tensor(trigram_ids(text)) for text in items]
        return {
            "ids": torch.cat(ids),
            "offsets": torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0),
            "marker": marker,
        }

    return DataLoader(texts, batch_size=batch_size, collate_fn=collate)


def test_custom_dataloaders_are_used(tv):
    seen: list[tuple[bool, str]] = []

    def unit_norm_step(batch, batch_idx):
        seen.append((tv.model.training, batch["marker"]))
        vectors = tv.model.training_step({"ids": batch["ids"], "offsets": batch["offsets"]}, task=TV)
        return (vectors.norm(dim=1) - 1).pow(2).mean()

    history = tv.finetune(
        PAIR_PARAMS,
        epochs=3,
        early_stopping_epochs=0,
        train_dataloader=text_loader(PAIR_PARAMS["texts1"], "mine-train"),
        val_dataloader=text_loader(PAIR_PARAMS["texts2"], "mine-val", batch_size=10),
        step=unit_norm_step,
        seed=0,
    )
    assert history.validated_on == "validation dataloader"
    assert set(seen) == {(True, "mine-train"), (False, "mine-val")}
    assert seen.count((True, "mine-train")) == 3 * 7 and seen.count((False, "mine-val")) == 3 * 2
    assert history.val_loss[-1] < history.val_loss[0]  # the user's loss, on the user's validation data
    norms = torch.tensor(tv(PAIR_PARAMS["texts2"])).norm(dim=1)
    assert (norms - 1).abs().mean() < 0.5


def test_train_dataloader_alone_validates_on_it_and_says_so(tv):
    seen: list[bool] = []

    def step(batch, batch_idx):
        seen.append(tv.model.training)
        vectors = tv.model.training_step({"ids": batch["ids"], "offsets": batch["offsets"]}, task=TV)
        return vectors.pow(2).mean()

    with pytest.warns(BpcoreWarning):
        history = tv.finetune(
            PAIR_PARAMS, epochs=1, train_dataloader=text_loader(PAIR_PARAMS["texts1"], "train"), step=step
        )
    assert history.validated_on == "training data"
    assert seen.count(True) == seen.count(False) == 7


# -- reproducibility, batch size ---------------------------------------------------------------


def finetuned(seed: int, tiny_plugin_name: str) -> tuple[object, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    tv = bpcore.TextVectorisation("tiny-text")
    history = tv.finetune(PAIR_PARAMS, epochs=3, batch_size=4, early_stopping_epochs=0, seed=seed)
    return history, state_of(tv.model)


def test_same_seed_gives_identical_history_and_weights(tiny_plugin):
    history1, weights1 = finetuned(7, tiny_plugin)
    history2, weights2 = finetuned(7, tiny_plugin)
    assert history1.seed == history2.seed == 7
    assert history1.train_loss == history2.train_loss
    assert history1.val_loss == history2.val_loss
    assert same_state(weights1, weights2)
    history3, weights3 = finetuned(8, tiny_plugin)
    assert history3.train_loss != history1.train_loss
    assert not same_state(weights1, weights3)


def test_automatic_batch_size_starts_from_the_model_optimum(tiny_plugin, seeded):
    class SmallBatches(TinyTextModel):
        optimal_batch_size = 4

    tv = bpcore.TextVectorisation(SmallBatches())
    recorder = Recorder(tv)
    history = tv.finetune(PAIR_PARAMS, validation_split=0.25, epochs=1, seed=0, step=recorder)
    assert history.batch_size == 4
    assert max(len(targets) for training, targets in recorder.calls if training) == 4
    history = tv.finetune(PAIR_PARAMS, validation_split=0.25, epochs=1, seed=0, optimal_batch_size=8)
    assert history.batch_size == 8


def test_automatic_batch_size_backs_off_on_out_of_memory(tv):
    sizes: list[int] = []

    def step(batch, batch_idx):
        size = len(batch["targets"])
        sizes.append(size)
        if size > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return tv.step_cosine(batch, batch_idx)

    history = tv.finetune(
        PAIR_PARAMS, validation_split=0.25, epochs=2, early_stopping_epochs=0, seed=0, step=step
    )
    assert sizes[0] == 15  # all 15 training examples fit under the default optimum of 16
    assert history.batch_size <= 4
    assert history.gradient_accumulation_steps > 1
    assert len(history) == 2 and all(math.isfinite(loss) for loss in history.val_loss)


def test_an_explicit_batch_size_is_not_changed_on_out_of_memory(tv):
    def step(batch, batch_idx):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with pytest.raises(RuntimeError, match="out of memory"):
        tv.finetune(PAIR_PARAMS, epochs=1, batch_size=8, step=step)


# -- finetuning works ---------------------------------------------------------------------------


def test_text_classification_finetuning_learns_the_labels(tiny_plugin, seeded):
    tc = bpcore.TextClassification("tiny-text")
    val = [0, 4, 8]
    train = [i for i in range(12) if i not in val]
    history = tc.finetune(
        CLASSIFICATION, validation_split=(train, val), epochs=25, early_stopping_epochs=3, seed=0
    )
    assert history.validated_on == "validation split"
    assert min(history.val_loss) < history.val_loss[0]
    predictions = tc([CLASSIFICATION["texts"][i] for i in train])
    for i, scores in zip(train, predictions):
        assert set(scores) == {"politics", "science", "film"}
        assert max(scores, key=scores.get) == CLASSIFICATION["labels"][i], (
            CLASSIFICATION["texts"][i],
            scores,
        )
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    single = tc("the senate votes on the tax law")
    assert max(single, key=single.get) == "politics"
    assert list(tc("the senate votes on the tax law", top_k=1)) == ["politics"]


class LogitsTextModel(TinyTextModel):
    """Returns logits for single-label text classification, as image classifiers do."""

    def process_batch(self, params, task):
        return {"ids": trigram_ids(params.get("text", params.get("inputs")), params.get("max_length"))}

    def collate_batch(self, items, task):
        return collate_ids(items)


def test_single_label_text_finetuning_takes_the_loss_or_logits_alike(seeded):
    # Spec 3.5.2: training_step returns the loss; a model may return logits instead, and the
    # core applies the same cross-entropy: both runs end identical.
    histories, answers = [], []
    for model_class in (TinyTextModel, LogitsTextModel):
        torch.manual_seed(0)
        tc = bpcore.TextClassification(model_class())
        histories.append(tc.finetune(CLASSIFICATION, validation_split=0.25, epochs=3, batch_size=4, seed=0))
        answers.append(tc(CLASSIFICATION["texts"][:3]))
    assert histories[0].train_loss == pytest.approx(histories[1].train_loss, rel=1e-5)
    assert histories[1].train_loss[-1] < histories[1].train_loss[0]
    for own, core in zip(*answers):
        assert own == pytest.approx(core, rel=1e-5)


def test_details_a_new_head_changes_follow_the_model_into_its_saved_folder(seeded, tmp_path):
    # A registry says 1,000 classes for an ImageNet head; after finetuning on 3 labels it has 3.
    model = TinyTextModel(details={"num_classes": 1000, "num_parameters": 1, "languages": ["eng"]})
    tc = bpcore.TextClassification(model)
    tc.finetune(CLASSIFICATION, validation_split=0.25, epochs=1, batch_size=4, seed=0)
    expected = {"num_classes": 3, "num_parameters": model.num_parameters(), "languages": ["eng"]}
    assert model.details == expected
    folder = tc.save("tiny-text-3", path=tmp_path / "tiny-text-3")
    assert bpcore.load(folder).details == expected


def test_pair_finetuning_moves_similarities_towards_the_targets(tv):
    def pair_error() -> float:
        first, second = tv(PAIR_PARAMS["texts1"]), tv(PAIR_PARAMS["texts2"])
        similarities = [bpcore.cosine_similarity(a, b) for a, b in zip(first, second)]
        return sum((s - t) ** 2 for s, t in zip(similarities, PAIR_PARAMS["similarity_scores"])) / COUNT

    before = pair_error()
    history = tv.finetune(PAIR_PARAMS, validation_split=0.2, epochs=15, early_stopping_epochs=3, seed=0)
    assert min(history.train_loss) < history.train_loss[0]
    assert pair_error() < before / 2


def test_finetuning_twice_continues_from_the_finetuned_weights(tv):
    tv.finetune(PAIR_PARAMS, epochs=2, seed=0)
    after_first = state_of(tv.model)
    tv.finetune(PAIR_PARAMS, epochs=2, seed=0)
    assert not same_state(after_first, state_of(tv.model))


# -- failures ----------------------------------------------------------------------------------


def test_nan_loss_raises_training_error_and_keeps_the_best_weights(tv):
    recorder = Recorder(tv)

    def step(batch, batch_idx):
        loss = recorder(batch, batch_idx)
        if tv.model.training and len(recorder.eval_snapshots) >= 2:
            return loss * math.nan
        return loss

    with pytest.raises(bpcore.TrainingError, match="nan") as caught:
        tv.finetune(PAIR_PARAMS, validation_split=0.25, epochs=5, early_stopping_epochs=0, seed=0, step=step)
    assert "epoch 3" in str(caught.value)
    assert isinstance(caught.value, RuntimeError)
    assert len(recorder.eval_snapshots) == 2
    best = state_of(tv.model)
    assert any(same_state(best, snapshot) for snapshot in recorder.eval_snapshots)


def test_weights_blowing_up_raise_training_error_and_leave_usable_weights(tv):
    before = state_of(tv.model)
    # One batch per epoch: the first update makes every weight inf or nan.
    with pytest.raises(bpcore.TrainingError):
        tv.finetune(
            PAIR_PARAMS,
            validation_split=0.25,
            epochs=3,
            batch_size=16,
            seed=0,
            configure_optimizers=lambda: torch.optim.SGD(tv.model.parameters(), lr=math.inf),
        )
    after = state_of(tv.model)
    assert all(torch.isfinite(value).all() for value in after.values())
    assert same_state(after, before)


def test_a_loss_without_gradient_still_runs(tv):
    history = tv.finetune(PAIR_PARAMS, epochs=1, seed=0, step=lambda batch, batch_idx: torch.tensor(0.5))
    assert history.train_loss == [0.5]


def test_a_run_without_a_seed_records_one_that_reproduces_it(tiny_plugin):
    torch.manual_seed(0)
    first = bpcore.TextVectorisation("tiny-text")
    history = first.finetune(PAIR_PARAMS, epochs=2, early_stopping_epochs=0)
    assert isinstance(history.seed, int)
    torch.manual_seed(0)
    second = bpcore.TextVectorisation("tiny-text")
    again = second.finetune(PAIR_PARAMS, epochs=2, early_stopping_epochs=0, seed=history.seed)
    assert again.val_loss == history.val_loss
    assert same_state(state_of(first.model), state_of(second.model))


def test_history_is_json_ready(tv):
    import json

    history = tv.finetune(PAIR_PARAMS, epochs=2, seed=0)
    record = json.loads(json.dumps(history.as_dict()))
    assert [epoch["epoch"] for epoch in record["epochs"]] == list(range(1, len(history) + 1))
    assert record["best_epoch"] == history.best_epoch and record["seed"] == 0


def test_max_length_option_reaches_the_model(tv):
    seen = []
    process = tv.model.process_batch

    def spy(params, task):
        seen.append(params)
        return process(params, task)

    tv.model.process_batch = spy
    tv.finetune(PAIR_PARAMS, epochs=1, seed=0, max_length=5)
    assert len(seen) >= COUNT * 2
    assert all(
        params["max_length"] == 5 and params["text"] in PAIR_PARAMS["texts1"] + PAIR_PARAMS["texts2"]
        for params in seen
    )


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
def test_multi_label_text_classification_finetuning(tiny_plugin, seeded):
    tc = bpcore.TextClassification("tiny-text")
    labels = [
        ["politics", "law"],
        ["politics"],
        ["politics", "law"],
        ["politics"],
        ["science"],
        ["science", "biology"],
    ]
    history = tc.finetune(
        {"texts": CLASSIFICATION["texts"][:6], "labels": labels}, variant="multi_label", epochs=15, seed=0
    )
    assert history.train_loss[-1] < history.train_loss[0]
    assert set(tc(CLASSIFICATION["texts"][0])) == {"biology", "law", "politics", "science"}


def test_a_single_example_trains(tv):
    with pytest.warns(BpcoreWarning):
        history = tv.finetune(
            {"texts1": ["a cat"], "texts2": ["the cat"], "similarity_scores": [1.0]}, epochs=2
        )
    assert history.validated_on == "training data" and len(history) >= 1
