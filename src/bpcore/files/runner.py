"""Batch inference over a data file: :func:`run_file` and ``bpcore run TASK --data IN --out OUT``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from bpcore.datafiles import FIELD, IMAGE, _check_file, _resolve_images
from bpcore.errors import InputError, InputTypeError
from bpcore.files.answers import ANSWER, ROW, Answered, AnswerWriter, answered
from bpcore.files.columns import TaskColumns, first_bad_row, locate
from bpcore.files.formats import Row, check_out_path, count_rows, data_format, read_rows

if TYPE_CHECKING:
    from bpcore.tasks import Task

#: Rows per model call (and per write) unless told otherwise: enough for a model to sort texts
#: by length within the batch, few enough to hold in memory whatever the file's size.
DEFAULT_BATCH_SIZE = 256


@attrs.frozen
class RunSummary:
    """What :func:`run_file` did: ``rows`` answered in ``out`` now, of which ``resumed`` were there before.

    ``seconds`` is the time spent answering, from when the model was ready.
    """

    rows: int
    resumed: int
    out: Path
    seconds: float

    @property
    def answered(self) -> int:
        """The rows this run answered."""
        return self.rows - self.resumed


def run_file(
    task: str | Task,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    id_column: str = "id",
    overwrite: bool = False,
    progress: bool | None = None,
    device: str | None = None,
    precision: str = "fp32",
    **options: Any,
) -> RunSummary:
    """Answer every row of ``data`` with ``task`` and write the answers to ``out``, in order, as it goes.

    ``data`` is JSON Lines (``.jsonl``, ``.ndjson``), CSV or Parquet (``bpcore[parquet]``); each
    row holds the task call's arguments by name (``{"text": ...}``; qa: ``question`` and
    ``context``; text-classification: ``text`` and optionally its own ``labels``), plus an
    optional ``id_column`` that is copied to the answer. ``options`` are the call's other
    keywords, the same for every row (``labels=[...]``, ``top_k=3``, ``max_length=40``). Image
    paths are relative to the data file's folder.

    ``out`` is JSON Lines, one line per row: ``{"row": 1, "id": "a7", "answer": [0.01, ...]}``
    (``row`` counts the data rows from 1). Rows are read, answered (``batch_size`` per model
    call) and written a batch at a time, so memory stays flat whatever the file's size. If
    ``out`` already holds answers (a run that was stopped), the run goes on after them: a torn
    last line is redone and no row is answered twice; ``overwrite=True`` starts again.

    A bad row is an :class:`~bpcore.InputError` naming the row and the column; every row before
    it has been written. ``task`` is a task name, or a task (its model already loaded); with a
    name, ``model`` (None: the task's default), ``device`` and ``precision`` make the task, as
    the task classes take them.
    ``progress``: a bar with rows/s on stderr (None: when stderr is a terminal).

    Example::

        # texts.jsonl: {"id": "a7", "text": "iPhone 12 128GB"} ...
        bpcore.run_file("text-vectorisation", "texts.jsonl", "vectors.jsonl")
        bpcore.run_file("text-classification", "news.csv", "labels.jsonl", labels=["politics", "science"])
    """
    path, out_path, task_class = _check_arguments(task, data, out, model, device, batch_size, id_column)
    columns = TaskColumns.of(task_class)
    columns.check_options(options)
    # Before the model loads: an output bpcore cannot go on from fails fast.
    done = answered(out_path, overwrite=overwrite)
    rows = _after(_checked(read_rows(path, id_column), columns, options, id_column, done, path), done.rows)
    runner = task_class(model, device=device, precision=precision) if isinstance(task, str) else task
    started = time.perf_counter()
    last = done.rows
    with AnswerWriter(out_path, overwrite=overwrite) as writer, _bar(path, done.rows, progress) as bar:
        for chunk, error in _chunks(rows, batch_size):
            if chunk:
                last = _answer(runner, chunk, columns.items, options, writer, id_column)
                bar.update(len(chunk))
            if error is not None:
                raise error
    return RunSummary(rows=last, resumed=done.rows, out=out_path, seconds=time.perf_counter() - started)


def _check_arguments(
    task: Any, data: Any, out: Any, model: Any, device: Any, batch_size: Any, id_column: Any
) -> tuple[Path, Path, type[Task]]:
    """The data file, the output file and the task class, each checked before anything is read."""
    if not isinstance(data, (str, os.PathLike)):
        raise InputTypeError(f"expected a file path, got {type(data).__name__}", field=FIELD)
    path = Path(os.path.expanduser(data))
    data_format(path)
    _check_file(path)
    out_path = check_out_path(out, path)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"must be a whole number of rows, 1 or more, got {batch_size!r}", field="batch_size")
    if not isinstance(id_column, str) or id_column in (ROW, ANSWER):
        raise InputError(f"must be a column name other than {ROW!r} and {ANSWER!r}", field="id_column")
    return path, out_path, _task_class(task, model, device)


def _task_class(task: Any, model: Any, device: str | None) -> type[Task]:
    from bpcore.tasks import TASK_CLASSES, Task

    if isinstance(task, Task):
        if model is not None or device is not None:
            field = "model" if model is not None else "device"
            raise InputError(f"give the {field} to the task, or a task name with the {field}", field=field)
        return type(task)
    if isinstance(task, str) and task in TASK_CLASSES:
        return TASK_CLASSES[task]
    raise InputError(f"{task!r:.100} is not a task; tasks are {', '.join(TASK_CLASSES)}", field="task")


def _checked(
    rows: Iterable[Row],
    columns: TaskColumns,
    options: dict[str, Any],
    id_column: str,
    done: Answered,
    path: Path,
) -> Iterator[Row]:
    """The rows, each checked to hold the same task columns as the first (and image paths resolved)."""
    keys: set[str] | None = None
    task_columns: tuple[str, ...] = ()
    for row in rows:
        values = row.values
        if not isinstance(values, dict):
            raise InputError(
                f"{row.place}: expected an object with the columns {columns.describe()}, got {type(values).__name__}",
                field=FIELD,
            )
        if keys is None:
            task_columns = columns.columns(list(values), options, row.place, ignored=(id_column,))
            keys = set(values)
        elif values.keys() != keys:
            missing = sorted(keys - values.keys())
            extra = sorted(values.keys() - keys)
            problem = (
                f"has no {', '.join(map(repr, missing))}" if missing else f"has {', '.join(map(repr, extra))}"
            )
            raise InputError(f"{row.place}: {problem}; every row holds the columns of the first", field=FIELD)
        for column in task_columns:
            columns.check_value(column, values[column], row.place)
        if "image" in task_columns:
            # Relative paths are relative to the data file's folder, as in finetuning data.
            images = [values["image"]]
            _resolve_images({"image": images}, path, {"image": {IMAGE}}, [row.place])
            values["image"] = images[0]
        if row.number == done.rows and done.last is not None:
            _check_same_row(row, done.last, id_column)
        yield row


def _check_same_row(row: Row, last: dict[str, Any], id_column: str) -> None:
    """The output's last answer is for this row of the data (the same id), so going on after it is right."""
    if last.get(id_column) != row.values.get(id_column):
        raise InputError(
            f"its last answer, for row {row.number}, has {id_column} {last.get(id_column)!r:.60}, but that row of "
            f"the data has {row.values.get(id_column)!r:.60}: it holds answers to other data; "
            "give another output file, or overwrite it (overwrite=True, --overwrite)",
            field="out",
        )


def _after(rows: Iterable[Row], done: int) -> Iterator[Row]:
    count = 0
    for row in rows:
        count = row.number
        if row.number > done:
            yield row
    if count < done:
        raise InputError(
            f"the output holds answers to {done} rows, but the data has only {count}: it holds answers to "
            "other data; give another output file, or overwrite it (overwrite=True, --overwrite)",
            field="out",
        )


def _chunks(rows: Iterator[Row], size: int) -> Iterator[tuple[list[Row], InputError | None]]:
    """Batches of ``size`` rows; a bad row ends the last batch, which comes with the error it raised."""
    chunk: list[Row] = []
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except InputError as error:
            yield chunk, error
            return
        chunk.append(row)
        if len(chunk) == size:
            yield chunk, None
            chunk = []
    if chunk:
        yield chunk, None


def _answer(
    task: Task,
    chunk: Sequence[Row],
    items: Sequence[str],
    options: dict[str, Any],
    writer: AnswerWriter,
    id_column: str,
) -> int:
    """Answer and write the rows of ``chunk``; a bad row raises once the rows before it are written.

    Returns the number of the last row written.
    """
    error: InputError | None = None
    while chunk:
        arguments = {name: [row.values[name] for row in chunk] for name in items if name in chunk[0].values}
        try:
            answers = task(**arguments, **options)
        except InputError as raised:
            bad = first_bad_row(raised)
            if bad is None:
                raise
            error, chunk = locate(raised, [row.place for row in chunk]), chunk[:bad]
            continue
        writer.write([_head(row, id_column) for row in chunk], answers)
        break
    if error is not None:
        raise error
    return chunk[-1].number


def _head(row: Row, id_column: str) -> dict[str, Any]:
    if id_column in row.values:
        return {ROW: row.number, id_column: row.values[id_column]}
    return {ROW: row.number}


class _NoBar:
    def update(self, count: int) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _bar(path: Path, initial: int, progress: bool | None) -> Any:
    """A tqdm bar on stderr: when asked, or by default on a terminal (there only, the rows are counted first)."""
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return _NoBar()
    from tqdm.auto import tqdm

    total = count_rows(path)
    return tqdm(total=total, initial=initial, unit=" rows", dynamic_ncols=True)
