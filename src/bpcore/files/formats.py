"""Reading a data file one row at a time: JSON Lines, CSV, or Parquet (with ``bpcore[parquet]``).

Every reader yields :class:`Row` objects in file order and holds at most one row (Parquet: one
record batch) in memory. A problem is an :class:`~bpcore.InputError` (field ``"data"``)
naming the row and where it is in the file; the rows before it have been yielded already.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from bpcore.datafiles import (
    FIELD,
    IMAGE,
    JSON,
    TEXT,
    _check_file,
    _csv_rows,
    _decoded_lines,
    _loads,
)
from bpcore.errors import InputError, InputTypeError

#: File endings and the format each one means.
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
#: Record batches read from a Parquet file at a time (of rows; a batch is what memory holds).
PARQUET_BATCH = 1024
#: What a CSV cell of each task column holds: text stays text, a list column is read as JSON.
CSV_KINDS: Mapping[str, set[str]] = {
    "text": {TEXT},
    "question": {TEXT},
    "context": {TEXT},
    "image": {IMAGE},
    "labels": {JSON},
    "prev_qa": {JSON},
}


@attrs.frozen
class Row:
    """One row of a data file: ``number`` counts rows from 1 (blank lines and a header are no rows)."""

    number: int
    where: str
    values: Any

    @property
    def place(self) -> str:
        """``row 7 (line 8)``: the row, and its line where that is another number (a header, blank lines)."""
        plain = self.where in (f"row {self.number}", f"line {self.number}")
        return f"row {self.number}" if plain else f"row {self.number} ({self.where})"


def data_format(path: Path) -> str:
    """``"jsonl"``, ``"csv"`` or ``"parquet"``: the format of a data file, from its ending."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path.name!r} has an ending bpcore does not read; use {', '.join(FORMATS)}", field=FIELD
        )
    if kind == "parquet":
        _pyarrow()
    return kind


def read_rows(path: Path, id_column: str | None = None) -> Iterator[Row]:
    """The rows of the data file at ``path``, in order, each a dict of its columns."""
    kind = data_format(path)
    _check_file(path)
    if kind == "parquet":
        yield from _parquet_rows(path)
        return
    kinds = {**CSV_KINDS, **({id_column: {TEXT}} if id_column else {})}
    # The CSV reader is finetuning's, without a task: the columns are checked here, per row.
    places = _csv_rows(path, kinds, None) if kind == "csv" else _jsonl_rows(path)
    for number, (where, values) in enumerate(places, 1):
        yield Row(number, where, values)


def count_rows(path: Path) -> int | None:
    """How many rows the file holds, when that is cheap to know (not for CSV: a cell may span lines)."""
    kind = data_format(path)
    if kind == "parquet":
        return int(_pyarrow().ParquetFile(path).metadata.num_rows)
    if kind == "jsonl":
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    return None


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    rows = 0
    for number, text in _decoded_lines(path):
        if text.strip():
            rows += 1
            place = Row(rows, f"line {number}", None).place
            yield f"line {number}", _loads(text, f"{place}: ")


def _parquet_rows(path: Path) -> Iterator[Row]:
    try:
        file = _pyarrow().ParquetFile(path)
    except Exception as error:  # pyarrow's own errors: ArrowInvalid, OSError
        raise InputError(f"cannot read {path.name} as Parquet ({error})", field=FIELD) from None
    number = 0
    for batch in file.iter_batches(batch_size=PARQUET_BATCH):
        for values in batch.to_pylist():
            number += 1
            yield Row(number, f"row {number}", values)


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet
    except ImportError:
        raise InputError(
            "reading Parquet needs pyarrow: pip install 'bpcore[parquet]'", field=FIELD
        ) from None
    return pyarrow.parquet


def check_out_path(out: str | os.PathLike[str], data: Path) -> Path:
    """The output file: JSON Lines (answers are appended a row at a time), never the data file itself."""
    if not isinstance(out, (str, os.PathLike)):
        raise InputTypeError(f"expected a file path, got {type(out).__name__}", field="out")
    path = Path(os.path.expanduser(out))
    if FORMATS.get(path.suffix.lower()) != "jsonl":
        raise InputError(f"must be a JSON Lines file (.jsonl or .ndjson), got {path.name!r}", field="out")
    if path.exists() and data.exists() and path.resolve() == data.resolve():
        raise InputError("is the data file itself; write the answers to another file", field="out")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder", field="out")
    return path
