"""Finetuning data from a file: JSON Lines, CSV or JSON rows, read into a task's ``params`` columns.

Each row holds one example, keyed by the task's params keys (``texts``, ``labels``, ...);
:func:`read_params` turns the rows into the columns ``finetune`` takes. A data file is
untrusted input: it is only parsed, never executed, and every problem with it is an
:class:`~bpcore.InputError` naming the line (or row) and the column.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import json
import os
import re
import stat
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import attrs

from bpcore.errors import InputError, InputTypeError

if TYPE_CHECKING:
    from bpcore.tasks.base import Task

#: File endings and the format each one means.
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".json": "json"}
#: The error field of every problem with a data file.
FIELD = "data"
#: At most this many problems are listed in one error (a bad file can have thousands).
MAX_PROBLEMS = 5
#: The largest CSV cell read (a base64 image can exceed the csv module's 128 KiB default).
MAX_CSV_CELL = 64 << 20

# What a column holds, from its element type in the params schemas; it decides how a CSV
# cell (always text) becomes a value, and which columns hold image paths.
TEXT, NUMBER, GROUP, IMAGE, JSON = "text", "number", "group", "image", "json"

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_PARAMS_FIELD = re.compile(r"^params\.(?P<column>\w+)(?:\[(?P<index>\d+)\])?(?P<rest>.*)$")


class DataParams(dict[str, list[Any]]):
    """A task's ``params`` read from a file: a plain dict of columns that remembers its rows' places.

    ``rows[i]`` says where example ``i`` came from (``"line 7"``, ``"row 3"``), or ``rows`` is
    None when the file held columns; :func:`locate` uses it to point errors at the file.
    """

    def __init__(self, columns: Mapping[str, list[Any]], path: Path, rows: list[str] | None) -> None:
        super().__init__(columns)
        self.path = path
        self.rows = rows


def read_params(path: str | os.PathLike[str], task: str | type[Task] | Task | None = None) -> DataParams:
    """Read a finetuning data file into ``params`` columns: ``{"texts": [...], "labels": [...]}``.

    The format follows the file's ending: ``.jsonl`` / ``.ndjson`` (one JSON object per line),
    ``.csv`` (a header row of params keys; a cell holding a JSON list or object, such as
    multi-label ``labels``, is read as JSON) or ``.json`` (a list of row objects, or one object
    of columns). Every row must have the same keys. With ``task`` (a task string or class),
    CSV cells become the types its params schemas want (``similarity_scores`` numbers,
    integer ``groups``; text stays text, so a label ``1`` stays ``"1"``), and a column the
    task does not take, or a missing one, is an error before anything else is read.

    Images in the data are paths relative to the data file's folder (absolute paths, and
    base64 strings or ``data:`` URLs, are kept as they are); an image path that names no
    file is an error.

    Raises :class:`~bpcore.InputError` (field ``"data"``) naming the line, or row, and the
    column of the first problem.

    Example::

        # train.jsonl:
        # {"texts": "The senate passed the bill", "labels": "politics"}
        # {"texts": "A new telescope saw a comet", "labels": "science"}
        params = read_params("train.jsonl", task="text-classification")
        # {"texts": ["The senate passed the bill", ...], "labels": ["politics", "science"]}
        bpcore.TextClassification().finetune(params)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"expected a file path, got {type(path).__name__}", field=FIELD)
    # os.path.expanduser leaves an unknown ~user as it is, where Path.expanduser raises.
    file = Path(os.path.expanduser(path))
    kind = FORMATS.get(file.suffix.lower())
    if kind is None:
        raise InputError(
            f"{file.name!r} has an ending bpcore does not read; use {', '.join(FORMATS)}", field=FIELD
        )
    _check_file(file)
    task_class = _task_class(task)
    kinds = column_kinds(task_class)
    if kind == "jsonl":
        return _from_rows(_jsonl_rows(file), file, task_class, kinds)
    if kind == "csv":
        return _from_rows(_csv_rows(file, kinds, task_class), file, task_class, kinds)
    data = _read_json(file)
    if isinstance(data, list):
        rows = ((f"row {number}", row) for number, row in enumerate(data, 1))
        return _from_rows(rows, file, task_class, kinds)
    return _from_columns(data, file, task_class, kinds)


def choose_variant(
    task: str | type[Task] | Task, params: Mapping[str, Any], variant: str | None = None
) -> str | None:
    """The finetuning variant for ``params``: ``variant`` if given (checked to fit the columns), else
    the one the columns fit (``texts`` and ``groups``: ``triplet``), trying the default first.

    When several variants take the same columns (``single_label`` and ``multi_label``), the
    first whose schema accepts the data wins (labels given as lists: ``multi_label``). A task
    with one way to finetune gets ``variant`` back as it is (None unless given).
    """
    from bpcore.schemas import structure

    task_class = _task_class(task)
    assert task_class is not None
    variants = task_class.variants
    if len(variants) < 2:
        return variant
    columns = set(params)
    if variant is not None:
        if variant in variants and not _fits(variants[variant].params, columns):
            raise InputError(
                f"the data's columns ({', '.join(sorted(columns))}) do not fit variant {variant!r}, "
                f"which takes {', '.join(_field_names(variants[variant].params))}",
                field=FIELD,
            )
        return variant
    fitting = [name for name, chosen in variants.items() if _fits(chosen.params, columns)]
    for name in fitting if len(fitting) > 1 else []:
        try:
            structure(params, variants[name].params, root="params")
        except InputError:
            continue
        return name
    return fitting[0] if fitting else None


def locate(error: InputError, params: Mapping[str, Any]) -> InputError:
    """``error`` (raised by ``finetune`` for ``params`` from :func:`read_params`) pointing at the file.

    ``params.texts[5]: is empty`` becomes ``data: line 7, column texts: is empty``; problems
    with other fields are kept as they are, and at most :data:`MAX_PROBLEMS` are listed.
    """
    if not isinstance(params, DataParams):
        return error
    problems = []
    for field, message in error.problems:
        match = _PARAMS_FIELD.match(field)
        if field == "params":
            problems.append((FIELD, message))
        elif match is None:
            problems.append((field, message))
        else:
            column, index, rest = match["column"], match["index"], match["rest"]
            if index is None:
                where = f"column {column}{rest}"
            elif params.rows is not None and int(index) < len(params.rows):
                where = f"{params.rows[int(index)]}, column {column}{rest}"
            else:
                where = f"column {column}, item {index}{rest}"
            problems.append((FIELD, f"{where}: {message}"))
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        problems = problems[:MAX_PROBLEMS] + [(FIELD, f"and {more} more problem{'s' * (more > 1)}")]
    located = (InputTypeError if isinstance(error, InputTypeError) else InputError)(problems)
    located.__dict__.update({k: v for k, v in error.__dict__.items() if k not in ("problems", "field")})
    return located


# -- what the tasks' params hold ---------------------------------------------------------------


def _task_class(task: str | type[Task] | Task | None) -> type[Task] | None:
    from bpcore.tasks import TASK_CLASSES, Task

    if task is None or (isinstance(task, type) and issubclass(task, Task)):
        return task
    if isinstance(task, Task):
        return type(task)
    if isinstance(task, str) and task in TASK_CLASSES:
        return TASK_CLASSES[task]
    raise InputError(f"{task!r:.100} is not a task; tasks are {', '.join(TASK_CLASSES)}", field="task")


def _field_names(schema: type) -> list[str]:
    return [field.name for field in attrs.fields(schema)]


def _required(schema: type) -> set[str]:
    return {field.name for field in attrs.fields(schema) if field.default is attrs.NOTHING}


def _fits(schema: type, columns: set[str]) -> bool:
    return _required(schema) <= columns <= set(_field_names(schema))


def _kind(element: Any) -> str:
    from bpcore.schemas import Group, ImageRef

    if element is ImageRef:
        return IMAGE
    if element is Group:
        return GROUP
    if element is float or element is int:
        return NUMBER
    if element is str:
        return TEXT
    return JSON


def _schemas(task_class: type[Task] | None) -> list[type]:
    from bpcore.tasks import TASK_CLASSES

    classes = [task_class] if task_class is not None else list(TASK_CLASSES.values())
    return [variant.params for cls in classes for variant in cls.variants.values()]


def column_kinds(task: str | type[Task] | Task | None = None) -> dict[str, set[str]]:
    """What each params key of ``task`` (of any task, when None) holds: ``{"labels": {"text", "json"}, ...}``."""
    kinds: dict[str, set[str]] = {}
    for schema in _schemas(_task_class(task)):
        for name, hint in typing.get_type_hints(schema).items():
            # Every params field is a list (or an optional one); what matters is its element.
            options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
            union = typing.get_origin(hint) in (Union, types.UnionType)
            column = options[0] if union and options else hint
            element = typing.get_args(column)[0] if typing.get_args(column) else column
            kinds.setdefault(name, set()).add(_kind(element))
    return kinds


def _kinds_of(column: str, kinds: Mapping[str, set[str]]) -> set[str]:
    if column in kinds:
        return kinds[column]
    # A column no schema knows (only read without a task): images by name, the rest as text or JSON.
    return {IMAGE} if "image" in column or column.startswith("img") else {TEXT, JSON}


def _check_columns(columns: list[str], task_class: type[Task] | None, where: str = "") -> None:
    """The columns fit one of the task's variants; else say which columns are unknown or missing.

    ``where`` (``"line 1: "``) says where the columns were named.
    """
    if task_class is None:
        return
    schemas = {name: variant.params for name, variant in task_class.variants.items()}
    known = {name for schema in schemas.values() for name in _field_names(schema)}
    unknown = [column for column in columns if column not in known]
    # Variants that take the same columns (single_label, multi_label) are named together.
    by_columns: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        by_columns.setdefault(", ".join(_field_names(schema)), []).append(name)
    needs = " or ".join(
        names + (f" ({', '.join(variants)})" if len(by_columns) > 1 else "")
        for names, variants in by_columns.items()
    )
    if unknown:
        raise InputError(
            f"{where}unknown column{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
            f"{task_class.task} takes {needs}",
            field=FIELD,
        )
    if any(_fits(schema, set(columns)) for schema in schemas.values()):
        return
    # The variant the columns come closest to says what is missing.
    closest = max(schemas.values(), key=lambda schema: len(_required(schema) & set(columns)))
    missing = sorted(_required(closest) - set(columns), key=_field_names(closest).index)
    raise InputError(
        f"{where}no column{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}; "
        f"{task_class.task} needs {needs}",
        field=FIELD,
    )


# -- reading -------------------------------------------------------------------------------------


def _check_file(file: Path) -> None:
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"no file at {str(file)!r:.300}", field=FIELD) from None
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise InputError(f"cannot read {str(file)!r:.300} ({reason})", field=FIELD) from None
    # A FIFO or device would block, or never end.
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise InputError(f"{str(file)!r} is {what}", field=FIELD)


def _decoded_lines(file: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line, decoded one at a time so a decoding error names its line."""
    try:
        with open(file, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as error:
                    raise InputError(
                        f"line {number}: not UTF-8 text (byte {raw[error.start : error.start + 1]!r} "
                        f"at position {error.start + 1})",
                        field=FIELD,
                    ) from None
                yield number, text
    except OSError as error:
        raise InputError(f"cannot read {str(file)!r} ({error.strerror or error})", field=FIELD) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r:.100} appears twice")
        seen[key] = value
    return seen


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as error:
        place = (
            f" at column {error.colno}"
            if error.lineno == 1
            else f" at line {error.lineno}, column {error.colno}"
        )
        raise InputError(f"{where}not valid JSON ({error.msg}{place})", field=FIELD) from None
    except RecursionError:
        raise InputError(f"{where}JSON nested too deeply", field=FIELD) from None
    except ValueError as error:  # a repeated key, or an integer too long to convert
        raise InputError(f"{where}not valid JSON ({error})", field=FIELD) from None


def _jsonl_rows(file: Path) -> Iterator[tuple[str, Any]]:
    for number, text in _decoded_lines(file):
        if text.strip():
            yield f"line {number}", _loads(text, f"line {number}: ")


@contextlib.contextmanager
def _csv_cell_limit() -> Iterator[None]:
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, MAX_CSV_CELL))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_rows(
    file: Path, kinds: Mapping[str, set[str]], task_class: type[Task] | None
) -> Iterator[tuple[str, Any]]:
    position = [0]

    def lines() -> Iterator[str]:
        for number, text in _decoded_lines(file):
            position[0] = number
            yield text

    with _csv_cell_limit():
        # strict: a stray quote is an error, not a silently merged cell.
        reader = csv.reader(lines(), strict=True)
        header: list[str] | None = None
        while True:
            start = position[0] + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise InputError(f"line {start}: not valid CSV ({error})", field=FIELD) from None
            if not cells or not any(cell.strip() for cell in cells):
                continue  # blank lines are not rows
            where = f"line {start}"
            if header is None:
                header = [cell.strip() for cell in cells]
                _check_header(header, where)
                _check_columns(header, task_class, f"{where}: ")
                continue
            if len(cells) != len(header):
                raise InputError(
                    f"{where}: {len(cells)} cell{'s' * (len(cells) != 1)}, but the header has "
                    f"{len(header)} columns ({', '.join(header)})",
                    field=FIELD,
                )
            yield (
                where,
                {
                    name: _cell(cell, _kinds_of(name, kinds), f"{where}, column {name}")
                    for name, cell in zip(header, cells)
                },
            )


def _check_header(header: list[str], where: str) -> None:
    for index, name in enumerate(header):
        if not name:
            raise InputError(
                f"{where}: column {index + 1} of the header has no name; the header names the params keys",
                field=FIELD,
            )
        if name in header[:index]:
            raise InputError(f"{where}: column {name!r} appears twice in the header", field=FIELD)


def _cell(text: str, kinds: set[str], where: str) -> Any:
    """A CSV cell as the value its column holds (JSON for lists, numbers for scores, else the text)."""
    stripped = text.strip()
    if JSON in kinds and stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped, object_pairs_hook=_no_duplicates)
        except (ValueError, RecursionError) as error:
            if TEXT in kinds:  # e.g. a label "[draft]": text, not a list
                return text
            reason = (
                error.msg if isinstance(error, json.JSONDecodeError) else str(error) or "nested too deeply"
            )
            raise InputError(f"{where}: not a valid JSON list ({reason})", field=FIELD) from None
    if kinds == {JSON}:
        if not stripped:
            return []  # e.g. no previous questions for this row
        raise InputError(f'{where}: expected a JSON list such as ["a", "b"], got {text!r:.60}', field=FIELD)
    if NUMBER in kinds:
        if not _NUMBER.fullmatch(stripped):
            raise InputError(f"{where}: expected a number, got {text!r:.60}", field=FIELD)
        return float(stripped)
    if GROUP in kinds and _INTEGER.fullmatch(stripped):
        return int(stripped)
    return text


def _read_json(file: Path) -> Any:
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {str(file)!r} ({error.strerror or error})", field=FIELD) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError(f"line {line}: not UTF-8 text", field=FIELD) from None
    if not text.strip():
        raise InputError(f"{file.name} is empty", field=FIELD)
    data = _loads(text, "")
    if isinstance(data, (list, dict)):
        return data
    raise InputError(
        f"expected a list of rows or an object of columns, got {type(data).__name__}", field=FIELD
    )


def _from_rows(
    rows: Iterable[tuple[str, Any]],
    file: Path,
    task_class: type[Task] | None,
    kinds: Mapping[str, set[str]],
) -> DataParams:
    columns: dict[str, list[Any]] = {}
    places: list[str] = []
    first = ""
    for where, row in rows:
        if not isinstance(row, dict):
            raise InputError(
                f"{where}: expected an object with the params keys, got {type(row).__name__}", field=FIELD
            )
        if not places:
            if not row:
                raise InputError(f"{where}: an empty object; a row holds the params keys", field=FIELD)
            _check_columns(list(row), task_class, f"{where}: ")
            columns, first = {key: [] for key in row}, where
        elif row.keys() != columns.keys():
            missing = [key for key in columns if key not in row]
            extra = [key for key in row if key not in columns]
            problem = (
                f"has no {', '.join(map(repr, missing))}"
                if missing
                else f"has {', '.join(map(repr, extra))}, which {first} has not"
            )
            raise InputError(
                f"{where}: {problem}; every row needs the same keys ({', '.join(columns)})", field=FIELD
            )
        for key, value in row.items():
            columns[key].append(value)
        places.append(where)
    if not places:
        raise InputError(f"{file.name} has no rows", field=FIELD)
    _resolve_images(columns, file, kinds, places)
    return DataParams(columns, file, places)


def _from_columns(
    data: dict[str, Any], file: Path, task_class: type[Task] | None, kinds: Mapping[str, set[str]]
) -> DataParams:
    if not data:
        raise InputError(
            f"{file.name} holds an empty object; give rows, or columns of params keys", field=FIELD
        )
    _check_columns(list(data), task_class)
    lengths = {}
    for key, values in data.items():
        if not isinstance(values, list):
            raise InputError(
                f"column {key}: expected a list (one value per example), got {type(values).__name__}",
                field=FIELD,
            )
        lengths[key] = len(values)
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{key} {length}" for key, length in lengths.items())
        raise InputError(f"the columns differ in length ({described}); they must match 1:1", field=FIELD)
    if not any(lengths.values()):
        raise InputError(f"{file.name} has no rows: every column is empty", field=FIELD)
    columns = {key: list(values) for key, values in data.items()}
    _resolve_images(columns, file, kinds, None)
    return DataParams(columns, file, None)


# -- images ---------------------------------------------------------------------------------------


def _is_base64(value: str) -> bool:
    try:
        return bool(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return False


def _resolve_images(
    columns: dict[str, list[Any]], file: Path, kinds: Mapping[str, set[str]], places: list[str] | None
) -> None:
    from bpcore.images import _looks_like_path

    folder = str(file.resolve().parent)
    for column, values in columns.items():
        if IMAGE not in _kinds_of(column, kinds):
            continue
        for index, value in enumerate(values):
            # Anything but a non-blank string is left for the schema to name.
            if not isinstance(value, str) or not value.strip() or value.startswith("data:"):
                continue
            # os.path, not Path: it answers False (never raises) for a name too long or holding
            # a NUL byte, and leaves an unknown ~user as it is.
            expanded = os.path.expanduser(value)
            candidate = os.path.join(folder, expanded)  # an absolute path stays absolute
            if os.path.isfile(candidate):
                values[index] = os.path.normpath(candidate)
            elif _looks_like_path(value) or not _is_base64(value):
                where = places[index] if places is not None else f"item {index}"
                relative = "" if os.path.isabs(expanded) else f" (relative to {folder})"
                raise InputError(
                    f"{where}, column {column}: no image file at {value!r:.300}{relative}", field=FIELD
                )
