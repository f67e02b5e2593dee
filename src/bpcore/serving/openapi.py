"""Each task route's request body, read off the task's own ``__call__``: the Python call is the HTTP body.

The JSON Schema only documents (``/docs``, ``/openapi.json``); the body is checked by the task
itself, with the same attrs schemas as a Python call, so an error names the field either way.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from bpcore.errors import InputError, InputTypeError
from bpcore.tasks.base import Task

#: Call arguments that make no sense over HTTP (answers are JSON).
PYTHON_ONLY = ("return_tensor",)
IMAGE_DOC = "an image as a base64 string or data URL, or a list of them"


def call_arguments(task: type[Task]) -> dict[str, inspect.Parameter]:
    """The arguments a task route takes: the task call's own, by name."""
    parameters = inspect.signature(task.__call__).parameters
    return {name: p for name, p in parameters.items() if name != "self" and name not in PYTHON_ONLY}


def check_body(task: type[Task], body: Any) -> tuple[str | None, dict[str, Any]]:
    """``(model, arguments)`` from a JSON body; an unknown or missing field is an InputError naming it."""
    if not isinstance(body, dict):
        raise InputTypeError(f"expected a JSON object, got {type(body).__name__}", field="body")
    arguments = dict(body)
    model = arguments.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise InputTypeError(f"expected a model name, got {type(model).__name__}", field="model")
    allowed = call_arguments(task)
    for name in arguments:
        if name not in allowed:
            raise InputTypeError(
                f"unknown field; {task.task} takes {', '.join(['model', *allowed])}", field=name
            )
    for name, parameter in allowed.items():
        if parameter.default is inspect.Parameter.empty and name not in arguments:
            raise InputError("is required", field=name)
    return model, arguments


def request_schema(task: type[Task]) -> dict[str, Any]:
    """The JSON Schema of a task route's body, from the task call's type hints."""
    import pydantic

    hints = typing.get_type_hints(task.__call__)
    fields: dict[str, Any] = {
        "model": (str | None, pydantic.Field(None, description="a served model (default: the task's)"))
    }
    for name, parameter in call_arguments(task).items():
        hint = hints.get(name, Any)
        if hint is Any:  # images: PIL objects in Python, base64 text over HTTP
            hint = str | list[str]
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (hint, pydantic.Field(default, description=IMAGE_DOC if name == "image" else None))
    model = pydantic.create_model(
        f"{task.__name__}Request", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )
    schema: dict[str, Any] = model.model_json_schema()
    return schema
