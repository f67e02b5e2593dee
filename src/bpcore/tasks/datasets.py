"""The spec's finetuning datasets (chapter 8.2), and how a task recognises loaders built over them.

Each dataset holds a task's ``params`` under the spec's constructor signature; reading an item
runs ``process_batch`` on it, as the default loader would. Handed to ``finetune`` as
``train_dataloader=DataLoader(dataset, batch_size=...)`` (and ``val_dataloader``), the task
takes the params and the batch size from the loaders and finetunes exactly as with ``params``:
the same checks, labels, default step, loss and checkpoints, no custom ``step`` needed.

Example::

    from torch.utils.data import DataLoader
    from bpcore.utils.datasets import TextPairDataset

    tv = bpcore.TextVectorisation(model)
    train = TextPairDataset(texts1, texts2, scores, model.process_batch)
    val = TextPairDataset(val_texts1, val_texts2, val_scores, model.process_batch)
    tv.finetune(None, train_dataloader=DataLoader(train, batch_size=8), val_dataloader=DataLoader(val))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from bpcore.contracts import CONTRACTS
from bpcore.errors import InputError
from bpcore.models.direct import front_for

ProcessBatch = Callable[..., Any]


class TaskDataset:
    """A task's finetuning params as a map-style dataset (``len``, ``dataset[i]``)."""

    task: ClassVar[str]
    variant: ClassVar[str]

    def __init__(self, params: Mapping[str, Any], process_batch: ProcessBatch, **options: Any) -> None:
        self.params = dict(params)
        self.process_batch = process_batch
        #: The task's own finetuning options the dataset was made with (e.g. ``max_length``).
        self.options = {key: value for key, value in options.items() if value is not None}
        self._examples: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.examples())

    def __getitem__(self, index: int) -> tuple[tuple[Any, ...], Any]:
        example = self.examples()[index]
        return tuple(self.process_batch(view, task=self.task) for view in example.views), example.target

    def examples(self) -> list[Any]:
        """The params as the variant's examples, checked as ``finetune`` checks them."""
        if self._examples is None:
            front = front_for(self.task)
            data = front.check_params(self.params, self.variant)
            options = {**_option_defaults(front.finetune), **self.options}
            self._examples = CONTRACTS[self.task].variant(self.variant).examples(data, options)
        return self._examples


def _option_defaults(finetune: Callable[..., Any]) -> dict[str, Any]:
    # The task's own options (max_length, ...) are the finetune parameters before **options.
    skip = {"self", "params", "validation_split", "variant"}
    return {
        name: parameter.default
        for name, parameter in inspect.signature(finetune).parameters.items()
        if name not in skip and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
    }


class TextPairDataset(TaskDataset):
    """Text vectorisation, cosine similarity: pairs of texts and how similar they are (0 to 1)."""

    task, variant = "text-vectorisation", "cosine_similarity"

    def __init__(
        self,
        texts1: Sequence[str],
        texts2: Sequence[str],
        similarity_scores: Sequence[float],
        process_batch: ProcessBatch,
        max_length: int | None = None,
    ) -> None:
        params = {"texts1": texts1, "texts2": texts2, "similarity_scores": similarity_scores}
        super().__init__(params, process_batch, max_length=max_length)


class TextGroupDataset(TaskDataset):
    """Text vectorisation, triplet: texts and the group each belongs to."""

    task, variant = "text-vectorisation", "triplet"

    def __init__(
        self,
        texts: Sequence[str],
        groups: Sequence[Any],
        process_batch: ProcessBatch,
        max_length: int | None = None,
    ) -> None:
        super().__init__({"texts": texts, "groups": groups}, process_batch, max_length=max_length)

    @property
    def groups(self) -> list[Any]:
        return list(self.params["groups"])


class ImagePairDataset(TaskDataset):
    """Image vectorisation, cosine similarity: pairs of images and how similar they are."""

    task, variant = "image-vectorisation", "cosine_similarity"

    def __init__(
        self,
        imgs1: Sequence[Any],
        imgs2: Sequence[Any],
        similarity_scores: Sequence[float],
        process_batch: ProcessBatch,
    ) -> None:
        super().__init__(
            {"imgs1": imgs1, "imgs2": imgs2, "similarity_scores": similarity_scores}, process_batch
        )


class ImageGroupDataset(TaskDataset):
    """Image vectorisation, triplet: images and the group each belongs to."""

    task, variant = "image-vectorisation", "triplet"

    def __init__(self, images: Sequence[Any], groups: Sequence[Any], process_batch: ProcessBatch) -> None:
        super().__init__({"images": images, "groups": groups}, process_batch)

    @property
    def groups(self) -> list[Any]:
        return list(self.params["groups"])


class ImageTextPairDataset(TaskDataset):
    """Image-text vectorisation, cosine similarity: pairs of ``(image, text)`` pairs and their similarity."""

    task, variant = "image-text-vectorisation", "cosine_similarity"

    def __init__(
        self,
        img_text_pairs1: Sequence[tuple[Any, str]],
        img_text_pairs2: Sequence[tuple[Any, str]],
        similarity_scores: Sequence[float],
        process_batch: ProcessBatch,
    ) -> None:
        first, second = _unzip(img_text_pairs1, "img_text_pairs1"), _unzip(img_text_pairs2, "img_text_pairs2")
        params = {
            "imgs1": first[0],
            "texts1": first[1],
            "imgs2": second[0],
            "texts2": second[1],
            "similarity_scores": similarity_scores,
        }
        super().__init__(params, process_batch)


class ImageTextGroupDataset(TaskDataset):
    """Image-text vectorisation, triplet: images with their texts, and the group each belongs to."""

    task, variant = "image-text-vectorisation", "triplet"

    def __init__(
        self, images: Sequence[Any], texts: Sequence[str], groups: Sequence[Any], process_batch: ProcessBatch
    ) -> None:
        super().__init__({"images": images, "texts": texts, "groups": groups}, process_batch)

    @property
    def groups(self) -> list[Any]:
        return list(self.params["groups"])


class SingleLabelImageClassificationDataset(TaskDataset):
    """Image classification, one label per image."""

    task, variant = "image-classification", "single_label"

    def __init__(self, images: Sequence[Any], labels: Sequence[str], process_batch: ProcessBatch) -> None:
        super().__init__({"images": images, "labels": labels}, process_batch)


class MultiLabelImageClassificationDataset(TaskDataset):
    """Image classification, a list of labels per image."""

    task, variant = "image-classification", "multi_label"

    def __init__(
        self, images: Sequence[Any], labels: Sequence[Sequence[str]], process_batch: ProcessBatch
    ) -> None:
        super().__init__({"images": images, "labels": labels}, process_batch)


class SingleLabelTextClassificationDataset(TaskDataset):
    """Text classification, one label per text: ``params`` is ``{"texts", "labels"}``, ``length`` the tokens kept."""

    task, variant = "text-classification", "single_label"

    def __init__(
        self, params: Mapping[str, Any], process_batch: ProcessBatch, length: int | None = None
    ) -> None:
        super().__init__(params, process_batch, max_length=length)


class TextToTextDataset(TaskDataset):
    """Text-to-text finetuning of ``task`` (qa, emotion, summarisation, text-generation) from its params.

    ``length`` is the tokens kept of each input (``max_input_length``).
    """

    variant = "text_to_text"

    def __init__(
        self, params: Mapping[str, Any], task: str, process_batch: ProcessBatch, length: int | None = None
    ) -> None:
        text_to_text = ("qa", "emotion", "summarisation", "text-generation")
        if task not in text_to_text:
            raise InputError(f"must be one of {', '.join(text_to_text)}, got {task!r}", field="task")
        self.task = task  # type: ignore[misc]  # a per-instance task: this dataset serves four
        self.variant = CONTRACTS[task].variants[0].name  # type: ignore[misc]
        super().__init__(params, process_batch, max_input_length=length)


def _unzip(pairs: Sequence[tuple[Any, str]], field: str) -> tuple[list[Any], list[str]]:
    images, texts = [], []
    for index, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InputError("expected an (image, text) pair", field=f"{field}[{index}]")
        images.append(pair[0])
        texts.append(pair[1])
    return images, texts


DATASETS = (
    ImageGroupDataset,
    ImagePairDataset,
    ImageTextGroupDataset,
    ImageTextPairDataset,
    MultiLabelImageClassificationDataset,
    SingleLabelImageClassificationDataset,
    SingleLabelTextClassificationDataset,
    TextGroupDataset,
    TextPairDataset,
    TextToTextDataset,
)


def dataset_of(loader: Any) -> TaskDataset | None:
    """The spec dataset a loader reads (``DataLoader(dataset)``), or None."""
    dataset = getattr(loader, "dataset", None)
    return dataset if isinstance(dataset, TaskDataset) else None


def from_dataset_loaders(
    task: str, params: Any, variant: str | None, validation_split: Any, arguments: dict[str, Any]
) -> tuple[Any, str | None, Any, dict[str, Any]]:
    """``finetune``'s arguments with loaders over spec datasets turned into ``params``.

    The training loader's params (then the validation loader's, named as the validation split)
    become the run's params; its batch size the run's, unless one was given. Loaders over
    anything else are left to the caller's ``step``, which needs ``params`` beside them.
    """
    train_loader, val_loader = arguments.get("train_dataloader"), arguments.get("val_dataloader")
    train, val = dataset_of(train_loader), dataset_of(val_loader)
    if train is None:
        if params is None:
            raise InputError(
                "is missing: give the data as params, or train_dataloader=DataLoader(dataset) over a "
                "bpcore.utils.datasets dataset",
                field="params",
            )
        if train_loader is not None and arguments.get("step") is None:
            raise InputError(
                "holds batches of your own, which only your step= knows how to use: pass step=, or build "
                "the loader over a bpcore.utils.datasets dataset (the task then batches it itself)",
                field="train_dataloader",
            )
        return params, variant, validation_split, arguments
    if params is not None:
        raise InputError("give params or a train_dataloader over a dataset, not both", field="params")
    _check_same(task, train, "train_dataloader")
    if val is not None:
        _check_same(task, val, "val_dataloader")
        if (val.task, val.variant) != (train.task, train.variant):
            raise InputError(
                f"holds {type(val).__name__}, the training loader {type(train).__name__}",
                field="val_dataloader",
            )
    params, validation_split = _joined(train, val, validation_split)
    arguments = {**arguments, "train_dataloader": None, "val_dataloader": None}
    if arguments.get("batch_size") is None:
        arguments["batch_size"] = getattr(train_loader, "batch_size", None)
    for key, value in train.options.items():
        if key in arguments and arguments[key] == _option_defaults(front_for(task).finetune).get(key):
            arguments[key] = value
    return params, train.variant, validation_split, arguments


def _check_same(task: str, dataset: TaskDataset, field: str) -> None:
    if dataset.task != task:
        raise InputError(f"holds a {type(dataset).__name__} for {dataset.task}, not {task}", field=field)


def _joined(train: TaskDataset, val: TaskDataset | None, validation_split: Any) -> tuple[dict[str, Any], Any]:
    if val is None:
        return dict(train.params), validation_split
    count, val_count = _count(train.params), _count(val.params)
    params = {}
    for key in train.params.keys() | val.params.keys():
        first, second = train.params.get(key), val.params.get(key)
        if first is None and second is None:
            continue
        params[key] = list(first or [[]] * count) + list(second or [[]] * val_count)
    return params, (list(range(count)), list(range(count, count + val_count)))


def _count(params: Mapping[str, Any]) -> int:
    # Every per-item field has one entry per example (the task's checks hold it): the first one counts.
    return next((len(value) for value in params.values() if isinstance(value, Sequence)), 0)
