"""The layout of a finetuning batch: what :class:`Collator` makes of examples, and how
:func:`split_views` takes the model's outputs for paired views apart again."""

from __future__ import annotations

import torch

from bpcore.batching import Collator, Example, ExampleDataset, split_views

# Three pairs: each view processes to a tensor that says which example and which view it is.
PAIRS = [
    Example(({"example": i, "view": 0}, {"example": i, "view": 1}), target=score)
    for i, score in enumerate([0.5, -0.25, 1.0])
]


def process(view: dict[str, int]) -> torch.Tensor:
    return torch.tensor([view["example"], view["view"]])


def collated_pairs() -> dict:
    dataset = ExampleDataset(PAIRS, process)
    return Collator()([dataset[i] for i in range(len(dataset))])


def test_an_example_reads_as_its_processed_views_and_its_target():
    views, target = ExampleDataset(PAIRS, process)[1]
    assert [view.tolist() for view in views] == [[1, 0], [1, 1]] and target == -0.25


def test_a_batch_holds_every_first_view_then_every_second_view():
    batch = collated_pairs()
    assert batch["views"] == 2
    # The model sees views x batch_size items in one call: first views in example order, then second views.
    assert batch["inputs"].tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]]
    assert batch["targets"].tolist() == [0.5, -0.25, 1.0]


def test_the_models_collate_gets_the_views_in_that_order():
    seen: list[list[int]] = []

    def collate(items: list[torch.Tensor]) -> str:
        seen.extend(item.tolist() for item in items)
        return "the model's batch"

    dataset = ExampleDataset(PAIRS, process)
    batch = Collator(collate)([dataset[i] for i in (2, 0)])
    assert batch["inputs"] == "the model's batch"
    assert seen == [[2, 0], [0, 0], [2, 1], [0, 1]]
    assert batch["targets"].tolist() == [1.0, 0.5] and batch["views"] == 2


def test_one_view_examples_and_examples_without_targets():
    singles = [Example(({"example": i, "view": 0},), target=i * 10) for i in range(3)]
    batch = Collator()([ExampleDataset(singles, process)[i] for i in range(3)])
    assert batch["views"] == 1 and batch["inputs"].tolist() == [[0, 0], [1, 0], [2, 0]]
    assert batch["targets"].tolist() == [0, 10, 20]
    untargeted = [Example(({"example": i, "view": 0},)) for i in range(2)]
    assert Collator()([ExampleDataset(untargeted, process)[i] for i in range(2)])["targets"] is None


def test_split_views_gives_back_each_view_in_example_order():
    batch = collated_pairs()
    # A "model" whose output row i is a vector made from input row i: the split must pair them up again.
    outputs = batch["inputs"].float() * torch.tensor([10.0, 1.0])
    first, second = split_views(outputs, batch["views"])
    assert first.tolist() == [[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]]
    assert second.tolist() == [[0.0, 1.0], [10.0, 1.0], [20.0, 1.0]]
    # The same for three views of vectors wider than the number of views.
    triples = torch.arange(3 * 4 * 5).reshape(3 * 4, 5)
    parts = split_views(triples, 3)
    assert len(parts) == 3 and all(part.shape == (4, 5) for part in parts)
    for view, part in enumerate(parts):
        assert torch.equal(part, triples[view * 4 : (view + 1) * 4])
    (whole,) = split_views(triples, 1)
    assert torch.equal(whole, triples)
