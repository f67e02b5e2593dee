"""The loop's options beyond the spec: accumulation, schedules, clipping, mixed precision,
trackers, checkpoints and resume, the out-of-memory restart, and DDP's unused-parameter search."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from core_helpers import same_state, state_of
from test_core_training import CLASSIFICATION, PAIR_PARAMS
from tiny_models import TinyTextModel
from torch.utils.data import DataLoader

import bpcore
from bpcore.training import BpcoreWarning

pytestmark = pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")

# 16 training examples, split 16/4: batches of 8 are two batches of 4 added up.
SPLIT = (list(range(16)), list(range(16, 20)))


def classifier(seed: int = 0) -> bpcore.TextClassification:
    torch.manual_seed(seed)
    return bpcore.TextClassification(TinyTextModel())


def pairs(seed: int = 0) -> bpcore.TextVectorisation:
    torch.manual_seed(seed)
    return bpcore.TextVectorisation(TinyTextModel())


def run(task, **options):
    defaults = {
        "validation_split": SPLIT,
        "epochs": 2,
        "early_stopping_epochs": 0,
        "seed": 1,
        "progress": False,
    }
    return task.finetune(PAIR_PARAMS, **{**defaults, **options})


def test_accumulating_two_batches_of_four_is_one_batch_of_eight():
    whole, accumulated = pairs(), pairs()
    run(whole, batch_size=8)
    history = run(accumulated, batch_size=4, gradient_accumulation_steps=2)
    assert history.gradient_accumulation_steps == 2 and len(history.step_losses) == 2 * 4
    for key, value in state_of(whole.model).items():
        torch.testing.assert_close(state_of(accumulated.model)[key], value, rtol=1e-5, atol=1e-6)
    unaccumulated = pairs()
    run(unaccumulated, batch_size=4)
    assert not same_state(state_of(unaccumulated.model), state_of(accumulated.model))


def test_warm_up_then_linear_decay_to_zero():
    history = run(pairs(), batch_size=4, epochs=4, lr_scheduler="linear", warmup_ratio=0.25)
    rates = [record.learning_rate for record in history.epochs]
    # 16 steps: warm-up to the peak (5e-2, the tiny model's rate) over 4, then down to 0.
    assert rates[0] == pytest.approx(5e-2) and rates[-1] == pytest.approx(0.0)
    assert rates == sorted(rates, reverse=True)
    constant = run(pairs(), batch_size=4, epochs=2)
    assert [record.learning_rate for record in constant.epochs] == [5e-2, 5e-2]


def test_a_warm_up_of_a_number_of_steps():
    history = run(pairs(), batch_size=4, epochs=3, warmup_steps=6)
    rates = [record.learning_rate for record in history.epochs]
    # 4 steps an epoch: 4/6 of the way up after the first epoch, at the peak after the second.
    assert rates == pytest.approx([5e-2 * 4 / 6, 5e-2, 5e-2])
    with pytest.raises(bpcore.InputError) as caught:
        run(pairs(), warmup_steps=6, warmup_ratio=0.1)
    assert caught.value.problems[0][0] == "warmup_steps"


class WarmingTinyText(TinyTextModel):
    """A model that trains best with a warm-up, and says so as data."""

    finetune_defaults = {"warmup_steps": 6}


def test_a_models_finetune_defaults_apply_and_the_callers_options_win():
    torch.manual_seed(0)
    rates = [r.learning_rate for r in run(bpcore.TextVectorisation(WarmingTinyText()), batch_size=4).epochs]
    assert rates == pytest.approx([5e-2 * 4 / 6, 5e-2])
    for options in ({"warmup_steps": 2}, {"warmup_ratio": 0.5}):
        torch.manual_seed(0)
        history = run(bpcore.TextVectorisation(WarmingTinyText()), batch_size=4, **options)
        # 8 steps: a 2-step warm-up (or half of 8: 4 steps) is over after the first epoch.
        assert [r.learning_rate for r in history.epochs] == pytest.approx([5e-2, 5e-2])


def test_clipping_bounds_each_step():
    task = pairs()
    before = state_of(task.model)
    history = run(
        task,
        batch_size=4,
        epochs=1,
        max_grad_norm=0.01,
        configure_optimizers=lambda: torch.optim.SGD(task.model.parameters(), lr=1.0),
    )
    moved = math.sqrt(
        sum(float((value - before[key]).pow(2).sum()) for key, value in state_of(task.model).items())
    )
    steps = len(history.step_losses)
    assert 0 < moved <= steps * 0.01 * 1.001


def test_bf16_mixed_precision_trains():
    task = classifier()
    before = state_of(task.model)
    history = task.finetune(CLASSIFICATION, epochs=2, seed=0, mixed_precision="bf16", progress=False)
    assert len(history) >= 1 and all(math.isfinite(loss) for loss in history.train_loss)
    assert not same_state(before, state_of(task.model))


def test_tensorboard_gets_the_losses_and_learning_rate(tmp_path: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = run(pairs(), batch_size=4, log_with="tensorboard", log_dir=tmp_path, lr_scheduler="cosine")
    [events] = [path for path in (tmp_path / "bpcore-finetune").glob("events.out.tfevents.*")]
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    scalars = accumulator.Tags()["scalars"]
    assert {"train/loss", "train/learning_rate", "epoch/train_loss", "epoch/val_loss"} <= set(scalars)
    logged = [event.value for event in accumulator.Scalars("train/loss")]
    assert logged == pytest.approx(history.step_losses)
    assert [event.value for event in accumulator.Scalars("epoch/val_loss")] == pytest.approx(history.val_loss)


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("gradient_accumulation_steps", 0),
        ("gradient_accumulation_steps", 1.5),
        ("mixed_precision", "fp8"),
        ("max_grad_norm", 0),
        ("max_grad_norm", "1"),
        ("lr_scheduler", "exponential"),
        ("warmup_ratio", 1.0),
        ("warmup_ratio", -0.1),
        ("checkpoint_dir", 3),
        ("resume", "yes"),
        ("resume", True),  # without a checkpoint_dir
        ("keep_checkpoints", 0),
        ("log_with", 3),
        ("log_dir", ["runs"]),
    ],
)
def test_bad_options_name_the_keyword(keyword, value):
    with pytest.raises(bpcore.InputError) as caught:
        run(pairs(), **{keyword: value})
    assert caught.value.field == keyword


def test_resuming_other_data_is_refused_and_an_empty_folder_starts_afresh(tmp_path: Path):
    with pytest.warns(BpcoreWarning, match="no checkpoint"):
        first = run(pairs(), batch_size=4, checkpoint_dir=tmp_path, resume=True)
    assert first.resumed_after_epoch is None and (tmp_path / "epoch-2").is_dir()
    # The run ended: resuming it again trains nothing and gives its history back.
    task = pairs(seed=5)
    again = run(task, batch_size=4, checkpoint_dir=tmp_path, resume=True)
    assert again.resumed_after_epoch == 2 and again.val_loss == first.val_loss
    # More epochs continue it.
    longer = run(pairs(seed=5), batch_size=4, checkpoint_dir=tmp_path, resume=True, epochs=3)
    assert longer.resumed_after_epoch == 2 and len(longer) == 3 and longer.val_loss[:2] == first.val_loss
    for changed in ({"batch_size": 8}, {"batch_size": 4, "lr_scheduler": "cosine"}):
        with pytest.raises(bpcore.InputError, match="other data, another batch size") as caught:
            run(pairs(), checkpoint_dir=tmp_path, resume=True, **changed)
        assert caught.value.field == "resume"


def test_an_out_of_memory_retry_starts_from_the_initial_weights():
    task = pairs()
    initial = state_of(task.model)
    training_calls = [0]

    def step(batch, batch_idx):
        if task.model.training:
            training_calls[0] += 1
            # The first attempt takes a step, then runs out of memory on its second batch.
            if len(batch["targets"]) > 4 and training_calls[0] == 2:
                raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return task.step_cosine(batch, batch_idx)

    history = task.finetune(
        PAIR_PARAMS,
        validation_split=SPLIT,
        epochs=2,
        early_stopping_epochs=0,
        seed=1,
        step=step,
        progress=False,
    )
    assert training_calls[0] > 2 and history.batch_size < 16
    # The same as a run that used the retry's batch from the start.
    fresh = pairs()
    assert same_state(state_of(fresh.model), initial)
    run(fresh, batch_size=history.batch_size, gradient_accumulation_steps=history.gradient_accumulation_steps)
    assert same_state(state_of(fresh.model), state_of(task.model))


class WithSpareLayer(TinyTextModel):
    """A model with weights no loss reaches (as BERT's pooler under a classification head)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.spare = torch.nn.Linear(4, 4)


def test_unused_parameters_are_found_without_a_trace():
    from accelerate import PartialState

    from bpcore.training.distributed import has_unused_parameters as _has_unused_parameters

    state = PartialState(cpu=True)
    for model, expected in ((TinyTextModel(), False), (WithSpareLayer(), True)):
        task = bpcore.TextVectorisation(model)
        # A real DataLoader: starting one draws from torch's generator, which must be restored too.
        loader = DataLoader([task_batch(task)], batch_size=None)
        before = state_of(model)
        rng = torch.get_rng_state()
        assert _has_unused_parameters(model, task.step_cosine, loader, state) is expected
        assert same_state(before, state_of(model)) and torch.equal(rng, torch.get_rng_state())
        assert all(parameter.grad is None for parameter in model.parameters())
    declared = WithSpareLayer()
    declared.find_unused_parameters = False  # the model's word wins
    assert _has_unused_parameters(declared, None, [], state) is False


def task_batch(task):
    from bpcore.batching import Collator

    examples = [
        {"text": text} for text in ["a red product", "the red product", "something else", "another thing"]
    ]
    items = [
        ((task.model.process_batch(a, task=task.task), task.model.process_batch(b, task=task.task)), 0.5)
        for a, b in zip(examples[:2], examples[2:])
    ]
    collate = task.model.collate_batch
    return Collator(lambda batch: collate(batch, task=task.task))(items)


def test_warnings_point_at_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs().finetune({k: v[:3] for k, v in PAIR_PARAMS.items()}, epochs=1, progress=False)
    assert caught and all(Path(warning.filename).name == Path(__file__).name for warning in caught)
