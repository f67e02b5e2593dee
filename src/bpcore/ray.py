"""A task over a Ray Dataset, one model per actor (extra ``bpcore[ray]``).

:class:`Predictor` is a callable class for ``Dataset.map_batches``: each actor loads the
model once, then answers batch after batch. A batch holds the task call's arguments as
columns (``text``; qa: ``question`` and ``context``), as a :func:`bpcore.run_file` row does;
the batch comes back with an ``answer`` column added and every other column (an id, ...) kept.

Example (vectorise a dataset on a cluster; the plugin serving the model on every node)::

    import ray, bpcore.ray

    texts = ray.data.read_parquet("s3://bucket/texts/")              # a "text" column
    bpcore.ray.map_task(texts, "text-vectorisation", actors=8).write_parquet("s3://bucket/vectors/")

Importing this module imports no Ray (only :func:`map_task` does) and no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bpcore.errors import InputError
from bpcore.files.columns import TaskColumns, first_bad_row, locate

if TYPE_CHECKING:
    import ray.data

#: Rows per model call unless told otherwise (as :func:`bpcore.run_file`).
DEFAULT_BATCH_SIZE = 256


class Predictor:
    """Answers batches of rows with one task, for ``Dataset.map_batches`` (one model per actor).

    ``task`` is a task name; ``model`` a registered name, alias, or the path of a saved model
    that every node can read (None: the task's default). ``options`` are the call's other
    keywords, the same for every row (``labels=[...]``, ``top_k=3``). Batches may be NumPy
    (Ray's default) or pandas (``batch_format="pandas"``).

    Answers are the task's own: vectors come back as a tensor column, texts as strings. Label
    probabilities (``{label: p}``) are stored by Ray as Arrow structs, whose fields are every
    label seen: a label left out of a row's answer (by ``top_k``) reads as None there.

    Example::

        ds.map_batches(
            bpcore.ray.Predictor,
            fn_constructor_args=("text-classification",),
            fn_constructor_kwargs={"labels": ["politics", "science"]},
            compute=ray.data.ActorPoolStrategy(size=4),
            batch_size=256,
        )
    """

    def __init__(
        self,
        task: str,
        model: str | None = None,
        *,
        device: str | None = None,
        answer_column: str = "answer",
        **options: Any,
    ) -> None:
        from bpcore.tasks import TASK_CLASSES

        if task not in TASK_CLASSES:
            raise InputError(
                f"{task!r:.100} is not a task; tasks are {', '.join(TASK_CLASSES)}", field="task"
            )
        self.columns = TaskColumns.of(TASK_CLASSES[task])
        self.columns.check_options(options)
        self.options = options
        self.answer_column = answer_column
        self.task = TASK_CLASSES[task](model, device=device)

    def __call__(self, batch: Any) -> Any:
        """``batch`` (a dict of NumPy arrays, or a pandas DataFrame) with the answers as a new column."""
        names = [name for name in self.columns.items if name in batch]
        self.columns.columns(names, self.options, "batch")  # a missing required column
        arguments = {name: [_plain(value) for value in batch[name]] for name in names}
        places = [f"batch row {index}" for index in range(len(arguments[names[0]]))]
        for name, values in arguments.items():
            for place, value in zip(places, values):
                self.columns.check_value(name, value, place)
        try:
            answers = self.task(**arguments, **self.options)
        except InputError as error:
            if first_bad_row(error) is None:
                raise
            raise locate(error, places) from None
        return _with_column(batch, self.answer_column, answers)


def map_task(
    dataset: ray.data.Dataset,
    task: str,
    model: str | None = None,
    *,
    actors: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_cpus: float = 1,
    num_gpus: float = 0,
    device: str | None = None,
    answer_column: str = "answer",
    **options: Any,
) -> ray.data.Dataset:
    """``dataset`` with each row's answer in ``answer_column``: :class:`Predictor` on ``actors`` actors.

    Each actor holds one model and reserves ``num_cpus`` (and ``num_gpus``); the dataset is
    lazy, as Ray's are: it runs when written or read.

    Example::

        vectors = bpcore.ray.map_task(ray.data.read_json("texts.jsonl"), "text-vectorisation", actors=4)
        vectors.write_parquet("vectors/")
    """
    import ray.data

    return dataset.map_batches(
        Predictor,
        fn_constructor_args=(task, model),
        fn_constructor_kwargs={"device": device, "answer_column": answer_column, **options},
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=batch_size,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )


def _plain(value: Any) -> Any:
    """A batch cell as plain Python: NumPy arrays (list cells) as lists, NumPy scalars as numbers."""
    if hasattr(value, "tolist"):
        value = value.tolist()  # an array of arrays becomes a list of arrays: hence the recursion
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _with_column(batch: Any, name: str, answers: list[Any]) -> Any:

    if isinstance(batch, Mapping):
        return {**batch, name: _array(answers)}
    batch = batch.copy()
    batch[name] = answers
    return batch


def _array(answers: list[Any]) -> Any:
    """Vectors as one 2-d float array (a tensor column); other answers (dicts, texts) one object each."""
    import numpy as np

    if all(isinstance(answer, list) for answer in answers):
        try:
            return np.asarray(answers, dtype=np.float64)
        except (ValueError, TypeError):  # not numbers, or not of one length
            pass
    column = np.empty(len(answers), dtype=object)
    for index, answer in enumerate(answers):
        column[index] = answer
    return column
