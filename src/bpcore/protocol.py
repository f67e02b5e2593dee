"""What the core enforces around a model call: eval mode without gradients, and well-formed answers.

The model protocol itself (what each task hands a model and expects back) is documented in
``docs/plugins/protocol.md``; this module is where the core holds models to it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from bpcore.errors import ModelProtocolError


@contextlib.contextmanager
def inference(model: Any) -> Iterator[None]:
    """Run one model call in ``eval()`` mode under ``torch.inference_mode()``, safely beside other calls.

    Calls share the model (:mod:`bpcore.model_lock`): none changes its mode, so concurrent calls
    never see each other's dropout. A model found in training mode (a user's ``model.train()``)
    is switched to ``eval()`` once, alone, and stays there. A model whose class sets
    ``thread_safe = False`` is called by one thread at a time. The thread that is finetuning the
    model (say a custom ``step`` calling the task) keeps the old way: eval for the call, then its
    training mode back, as nobody else can call the model meanwhile.
    """
    import torch

    from bpcore.model_lock import lock_for

    lock = lock_for(model)
    is_module = isinstance(model, torch.nn.Module)
    if lock.held_for_writing():
        was_training = is_module and model.training
        if was_training:
            model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            if was_training:
                model.train()
        return
    if is_module and model.training:
        with lock.writing():
            model.eval()
    exclusive = getattr(model, "thread_safe", True) is False
    with lock.writing() if exclusive else lock.reading(), torch.inference_mode():
        yield


def ready_for_inference(model: Any) -> Any:
    """``model`` in ``eval()`` mode, as bpcore hands every model out (``load``, tasks, ``AutoModel``).

    Inference then never has to switch modes, which concurrent calls could not do safely.
    """
    eval_mode = getattr(model, "eval", None)
    if callable(eval_mode) and getattr(model, "training", False):
        eval_mode()
    return model


def describe_model(model: Any, plugin: str | None = None) -> str:
    label = getattr(model, "name", None) or type(model).__name__
    source = plugin or type(model).__module__.split(".")[0]
    return f"model {label!r} ({type(model).__name__} from {source})"


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not JSON-ready (None if it is); floats must be finite."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"the number {value}"
    if depth > 32:
        return "nesting deeper than 32 levels"
    if isinstance(value, (list, tuple)):
        # Vectors are long lists of floats: check them without recursing per number.
        if value and all(type(item) is float for item in value):
            return None if all(math.isfinite(item) for item in value) else "a non-finite number"
        for item in value:
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        # Classification answers are flat {label: probability}: check them without recursing per label.
        if all(type(key) is str and type(item) is float for key, item in value.items()):
            return None if all(math.isfinite(item) for item in value.values()) else "a non-finite number"
        for key, item in value.items():
            if not isinstance(key, str):
                return f"a dict key of type {type(key).__name__}"
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"a {type(value).__module__}.{type(value).__name__}"


def check_answers(
    output: Any, count: int, *, task: str, model: Any, plugin: str | None = None, return_tensor: bool = False
) -> Any:
    """Check a model gave one answer per item: JSON-ready, or a tensor of ``count`` rows for ``return_tensor``."""
    who = describe_model(model, plugin)
    if return_tensor:
        import torch

        if not isinstance(output, torch.Tensor):
            raise ModelProtocolError(
                f"{who} returned {type(output).__name__} for {task} with return_tensor=True; "
                "the protocol asks for a torch.Tensor with one row per item"
            )
        if output.dim() == 0 or output.shape[0] != count:
            raise ModelProtocolError(
                f"{who} returned a tensor of shape {tuple(output.shape)} for {count} items of {task}; "
                "the protocol asks for one row per item"
            )
        return output
    if not isinstance(output, (list, tuple)):
        raise ModelProtocolError(
            f"{who} returned {type(output).__name__} for {task}; the protocol asks for a list with one "
            "JSON-ready answer per item"
        )
    if len(output) != count:
        raise ModelProtocolError(f"{who} returned {len(output)} answers for {count} items of {task}")
    for index, answer in enumerate(output):
        problem = _json_problem(answer)
        if problem:
            raise ModelProtocolError(
                f"{who} answered item {index} of {task} with {problem}, which is not JSON-ready "
                "(return lists, dicts, strings and finite numbers; tensors only with return_tensor=True)"
            )
    return list(output)
