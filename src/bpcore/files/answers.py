"""The answers file: one JSON line per row, ``{"row": 7, "id": ..., "answer": ...}``, appended as rows are answered.

The file is its own progress record: a run that stops (Ctrl-C, a crash, a killed process)
leaves whole lines for the rows it answered and at most one torn line after them. The next
run cuts the torn line off and goes on after the last whole one, so no row is lost or
written twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from bpcore.errors import InputError

#: The output key of each row's number (counted from 1) and of its answer.
ROW, ANSWER = "row", "answer"
FIELD = "out"


@attrs.frozen
class Answered:
    """What an answers file holds: ``rows`` whole lines, the last for row ``rows`` with ``last`` as its object."""

    rows: int
    last: dict[str, Any] | None


def answered(path: Path, *, overwrite: bool = False) -> Answered:
    """The rows ``path`` answers already (none if it does not exist, or with ``overwrite``); a torn last line is cut off.

    A whole line that is not the next row's answer means the file is not one this runs wrote:
    an :class:`~bpcore.InputError` (field ``"out"``), and the file is left as it is.
    """
    if overwrite or not path.exists():
        return Answered(0, None)
    rows, whole, last = 0, 0, None
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # torn: the run stopped while writing it
            try:
                line = json.loads(raw)
            except (ValueError, RecursionError):
                line = None
            if not isinstance(line, dict) or line.get(ROW) != rows + 1 or ANSWER not in line:
                raise InputError(
                    f"line {rows + 1} of {path.name} is not the answer to row {rows + 1}, so bpcore cannot "
                    "go on from it; give another output file, or overwrite it (overwrite=True, --overwrite)",
                    field=FIELD,
                )
            rows, whole, last = rows + 1, whole + len(raw), line
    if whole < path.stat().st_size:
        os.truncate(path, whole)
    return Answered(rows, last)


class AnswerWriter:
    """Appends answer lines to ``path`` (a new file, or one :func:`answered` checked), flushed after each batch.

    Each batch goes out in one write: a process killed meanwhile leaves whole lines and at most
    one torn line, which the next run drops.
    """

    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "wb" if overwrite else "ab")  # noqa: SIM115 - closed in __exit__

    def write(self, heads: Sequence[dict[str, Any]], answers: Sequence[Any]) -> None:
        """One line per row: its ``head`` (``{"row": 7}``, and its id) with its answer, in order."""
        lines = [
            json.dumps({**head, ANSWER: answer}, ensure_ascii=False)
            for head, answer in zip(heads, answers, strict=True)
        ]
        self._file.write(("\n".join(lines) + "\n").encode("utf-8"))
        self._file.flush()

    def __enter__(self) -> AnswerWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
