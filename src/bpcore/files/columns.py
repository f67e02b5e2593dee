"""A task's rows: which columns a row holds, and many rows as one task call.

A row holds the task call's item arguments by name (``{"text": "..."}`` for text
vectorisation, ``{"question": ..., "context": ...}`` for qa); the call's other arguments
(``top_k``, ``max_length``, ...) are options, the same for every row. Used by
:func:`bpcore.run_file` and :mod:`bpcore.ray`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from bpcore.datafiles import FIELD
from bpcore.errors import InputError, InputTypeError

if TYPE_CHECKING:
    from bpcore.tasks import Task

#: Call arguments that hold one value per item: what a row's columns hold.
ITEMS = ("text", "image", "question", "context", "prev_qa", "labels")
#: Item arguments that may also be given once for every row (one label list, one context).
SHARED = ("labels", "context")
#: Item arguments whose value in a row is a list.
LISTS = ("labels", "prev_qa")
#: Keywords that only Python callers can use: the answers are JSON.
PYTHON_ONLY = ("return_tensor",)

_ITEM_FIELD = re.compile(r"^input\.(?P<column>\w+)\[(?P<index>\d+)\](?P<rest>.*)$")


@attrs.frozen
class TaskColumns:
    """The columns rows of ``task`` hold (``required``, ``optional``) and its ``options``."""

    task: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    options: tuple[str, ...]

    @classmethod
    def of(cls, task_class: type[Task]) -> TaskColumns:
        parameters = list(inspect.signature(task_class.__call__).parameters.values())[1:]
        items = [parameter for parameter in parameters if parameter.name in ITEMS]
        return cls(
            task=task_class.task,
            required=tuple(p.name for p in items if p.default is inspect.Parameter.empty),
            optional=tuple(p.name for p in items if p.default is not inspect.Parameter.empty),
            options=tuple(p.name for p in parameters if p.name not in ITEMS and p.name not in PYTHON_ONLY),
        )

    @property
    def items(self) -> tuple[str, ...]:
        return self.required + self.optional

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Options name the task's keywords; an item argument only where one value can serve every row."""
        for key in options:
            if key in self.items and key not in SHARED:
                raise InputError(f"give {key} as a column of the data, one per row", field=key)
            if key not in self.items and key not in self.options:
                takes = ", ".join(self.options + tuple(k for k in SHARED if k in self.items))
                raise InputTypeError(
                    f"{self.task} takes no option {key!r}; it takes {takes or 'none'}", field=key
                )

    def columns(
        self, keys: Sequence[str], options: Mapping[str, Any], where: str, ignored: Sequence[str] = ()
    ) -> tuple[str, ...]:
        """The task columns among a row's ``keys``; ``ignored`` keys (an id) are left out.

        Unknown keys (a misspelt column) are an error, and so is a missing required column.
        """
        unknown = [key for key in keys if key not in self.items and key not in ignored]
        if unknown:
            raise InputError(
                f"{where}: unknown column{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                f"{self.task} rows hold {self.describe()}",
                field=FIELD,
            )
        for key in keys:
            if key in options:
                raise InputError(f"{where}: {key} is a column and an option; give it once", field=FIELD)
        missing = [key for key in self.required if key not in keys and key not in options]
        if missing:
            raise InputError(
                f"{where}: no column {', '.join(map(repr, missing))}; {self.task} rows hold {self.describe()}",
                field=FIELD,
            )
        return tuple(key for key in keys if key in self.items)

    def describe(self) -> str:
        optional = f" (and optionally {', '.join(self.optional)})" if self.optional else ""
        return ", ".join(self.required) + optional

    def check_value(self, column: str, value: Any, where: str) -> None:
        """A list column holds a list in each row (else a label string would be taken for every row's labels)."""
        if column in LISTS and not isinstance(value, (list, tuple)):
            raise InputTypeError(
                f"{where}, column {column}: expected a list, got {type(value).__name__}", field=FIELD
            )


def first_bad_row(error: InputError) -> int | None:
    """The index of the first row a task call's ``error`` names (``input.text[3]``: 3), if any."""
    indexes = [int(match["index"]) for field, _ in error.problems if (match := _ITEM_FIELD.match(field))]
    return min(indexes) if indexes else None


def locate(error: InputError, places: Sequence[str]) -> InputError:
    """``error`` of a call on many rows, pointing at rows: ``input.text[3]`` becomes ``row 4, column text``.

    ``places[i]`` says where row ``i`` of the call is; problems with no row are kept as they are.
    """
    problems = []
    for field, message in error.problems:
        match = _ITEM_FIELD.match(field)
        if match is None or int(match["index"]) >= len(places):
            problems.append((field, message))
            continue
        where = f"{places[int(match['index'])]}, column {match['column']}{match['rest']}"
        problems.append((FIELD, f"{where}: {message}"))
    return (InputTypeError if isinstance(error, InputTypeError) else InputError)(problems)
