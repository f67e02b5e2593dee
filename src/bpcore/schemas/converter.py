"""One cattrs converter for every task schema: strict types, and errors that name the field and item."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any, NewType, TypeVar

import attrs
import cattrs
from cattrs._compat import is_mutable_sequence, is_tuple
from cattrs.cols import list_structure_factory
from cattrs.errors import BaseValidationError, ForbiddenExtraKeysError

from bpcore.errors import InputError, InputTypeError

#: A schema: an attrs class.
T = TypeVar("T", bound=attrs.AttrsInstance)

#: A path to an image file, a base64-encoded image, or a ``PIL.Image.Image``.
ImageRef = NewType("ImageRef", object)
#: A group id for triplet finetuning: an int or a string.
Group = NewType("Group", object)

converter = cattrs.Converter(forbid_extra_keys=True)


def unicode_problem(value: str) -> str | None:
    """Why ``value`` is not valid Unicode text (None if it is): a lone surrogate such as ``"\\ud800"``.

    Such strings come from broken decoding (e.g. a non-UTF-8 command-line argument); no
    tokenizer can encode them.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return (
            f"is not valid Unicode: a lone surrogate {value[error.start]!r} at position {error.start} "
            "(was it decoded from non-UTF-8 bytes?)"
        )
    return None


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    problem = unicode_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return float(value)


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


def _image_ref(value: Any, _: Any) -> Any:
    pil_image = sys.modules.get("PIL.Image")
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("expected an image path or base64 string, got an empty string")
        return value
    if pil_image is not None and isinstance(value, pil_image.Image):
        return value
    raise TypeError(f"expected an image path, base64 string or PIL image, got {type(value).__name__}")


def _group(value: Any, _: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected a group id (integer or string), got {type(value).__name__}")
    if isinstance(value, str) and unicode_problem(value):
        raise ValueError(unicode_problem(value))
    return value


def _strict_list_factory(list_type: Any) -> Any:
    structure_items = list_structure_factory(list_type, converter)

    def structure(value: Any, cls: Any) -> list[Any]:
        # cattrs would happily turn a string into a list of characters.
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return structure_items(value, cls)

    return structure


def _strict_tuple(value: Any, cls: Any) -> Any:
    # cattrs would turn the string "ab" into the pair ("a", "b").
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list or tuple, got {type(value).__name__}")
    return converter._structure_tuple(value, cls)


converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(float, _strict_float)
converter.register_structure_hook(bool, _strict_bool)
converter.register_structure_hook(ImageRef, _image_ref)
converter.register_structure_hook(Group, _group)
converter.register_structure_hook_factory(is_mutable_sequence, _strict_list_factory)
converter.register_structure_hook_func(is_tuple, _strict_tuple)


def _format(error: BaseException, expected: Any) -> str:
    if isinstance(error, KeyError):
        return "required field missing"
    if isinstance(error, ForbiddenExtraKeysError):
        return f"unknown key(s) {sorted(error.extra_fields)}"
    if (
        isinstance(error, (TypeError, ValueError))
        and str(error)
        and not isinstance(error, BaseValidationError)
    ):
        return str(error)
    name = getattr(expected, "__name__", None) or str(expected)
    return f"invalid value, expected {name}"


def _problems(error: BaseValidationError, root: str) -> tuple[list[tuple[str, str]], bool]:
    """Each problem as ``(field path, message)``, and whether all of them are wrong types."""
    kinds: list[bool] = []

    def format_exception(exception: BaseException, expected: Any) -> str:
        kinds.append(isinstance(exception, TypeError) and not isinstance(exception, BaseValidationError))
        return _format(exception, expected)

    problems = []
    for line in cattrs.transform_error(error, path=root, format_exception=format_exception):
        message, _, where = line.rpartition(" @ ")
        problems.append((where or root, message or line))
    return problems, bool(kinds) and all(kinds)


def structure(data: Any, cls: type[T], root: str) -> T:
    """Structure plain dicts and lists into ``cls``, raising :class:`InputError` on any problem."""
    if not isinstance(data, Mapping):
        keys = ", ".join(field.name for field in attrs.fields(cls))
        raise InputTypeError(f"expected a dict with keys {keys}, got {type(data).__name__}", field=root)
    try:
        value = converter.structure(dict(data), cls)
    except BaseValidationError as error:
        problems, all_types = _problems(error, root)
        raise (InputTypeError if all_types else InputError)(problems) from None
    check = getattr(value, "check", None)
    if check is not None:
        check(root)
    return value
