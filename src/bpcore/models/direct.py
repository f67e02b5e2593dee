"""Calling a model directly, as spec 3.4 does: ``model({"text": "This is pretty cool!"}, task="emotion")``.

Tasks hand a model its input batched (a list per field, images decoded). A user calling the
model itself may pass one text, an image path or the spec's ``prev_q``/``prev_a`` keys. Such a
call goes through the task's own front — the same validation, batching, decoding and answer
checks — so it gives the task's answer: one for one input, a list for a list. Calls made by a
task (or a model inside one) reach the model's ``__call__`` unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from bpcore.errors import InputError, InputTypeError
from bpcore.flags import setting

_INSIDE_TASK: ContextVar[bool] = ContextVar("bpcore_inside_task", default=False)
# Each task class enters itself here when it is defined (bpcore.tasks imports this module, not the reverse).
_FRONTS: dict[str, Callable[[Any], Callable[..., Any]]] = {}
_QA_HISTORY_KEYS = ("prev_q", "prev_a")


def register_front(task: str, front: Callable[[Any], Callable[..., Any]]) -> None:
    """Make ``front(model)(**arguments)`` the way a direct call of ``task`` is answered."""
    _FRONTS[task] = front


def front_for(task: str) -> Any:
    """The task class registered for ``task`` (``bpcore.tasks`` registers all nine on import)."""
    try:
        return _FRONTS[task]
    except KeyError:
        raise InputError(
            f"unknown task {task!r}; tasks are {', '.join(sorted(_FRONTS))}", field="task"
        ) from None


@contextmanager
def task_call() -> Iterator[None]:
    """Mark model calls made by a task: their input is already batched and checked."""
    with setting(_INSIDE_TASK, True):
        yield


def through_task_front(call: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a model class's ``__call__`` so that a direct call of a task the model serves goes through the task."""
    if getattr(call, "_bpcore_direct", False):
        return call
    default_task = _default_task(call)

    @functools.wraps(call)
    def __call__(self: Any, task_input: Any, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE_TASK.get() or args or not isinstance(task_input, Mapping):
            return call(self, task_input, *args, **kwargs)
        task = kwargs.pop("task", default_task)
        if not isinstance(task, str) or task not in (getattr(self, "tasks", None) or ()):
            # A model that declares no such task answers as it likes (spec 3.4's MyModel does).
            return (
                call(self, task_input, task=task, **kwargs)
                if task is not None
                else call(self, task_input, **kwargs)
            )
        front = _FRONTS.get(task)
        if front is None:
            return call(self, task_input, task=task, **kwargs)
        arguments = task_arguments(task, task_input)
        _check_known(front, arguments, kwargs)
        return front(self)(**arguments, **kwargs)

    __call__._bpcore_direct = True  # type: ignore[attr-defined]
    return __call__


def task_arguments(task: str, task_input: Mapping[str, Any]) -> dict[str, Any]:
    """The task call's keyword arguments for a model's input dict (the spec's keys, 3.4.x)."""
    arguments = {str(key): value for key, value in task_input.items()}
    if task == "qa" and any(key in arguments for key in _QA_HISTORY_KEYS):
        if "prev_qa" in arguments:
            raise InputError("give prev_qa, or prev_q with prev_a, not both", field="input.prev_qa")
        questions = arguments.pop("prev_q", None) or []
        answers = arguments.pop("prev_a", None) or []
        arguments["prev_qa"] = _history(questions, answers, single=isinstance(arguments.get("question"), str))
    return arguments


def _check_known(front: Callable[..., Any], arguments: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    accepted = [name for name in inspect.signature(front.__call__).parameters if name != "self"]  # type: ignore[operator]
    for prefix, given in (("input.", arguments), ("", options)):
        for key in given:
            if key not in accepted:
                raise InputError(
                    f"is not an input of this task; it takes {', '.join(accepted)}", field=prefix + key
                )


def _history(questions: Any, answers: Any, single: bool) -> Any:
    """``prev_q``/``prev_a`` (lists, or a list per question) as the task's ``prev_qa`` pairs."""
    if single:
        return _pairs(questions, answers, "input.prev_q")
    for name, value in (("prev_q", questions), ("prev_a", answers)):
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise InputTypeError(
                f"expected a list per question, got {type(value).__name__}", field=f"input.{name}"
            )
    if len(questions) != len(answers):
        raise InputError(
            f"has {len(questions)} entries but prev_a has {len(answers)}: one of each per question",
            field="input.prev_q",
        )
    return [_pairs(q, a, f"input.prev_q[{index}]") for index, (q, a) in enumerate(zip(questions, answers))]


def _pairs(questions: Any, answers: Any, field: str) -> list[tuple[Any, Any]]:
    for value in (questions, answers):
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise InputTypeError(f"expected a list of strings, got {type(value).__name__}", field=field)
    if len(questions) != len(answers):
        raise InputError(f"has {len(questions)} questions but {len(answers)} answers (prev_a)", field=field)
    return list(zip(questions, answers))


def _default_task(call: Callable[..., Any]) -> str | None:
    try:
        parameter = inspect.signature(call).parameters.get("task")
    except (TypeError, ValueError):
        return None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default if isinstance(parameter.default, str) else None
