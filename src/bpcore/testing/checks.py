"""The conformance checks: each a small function that raises :class:`ConformanceError` naming its rule."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bpcore.contracts import CONTRACTS
from bpcore.testing import fuzz
from bpcore.testing.folder_checks import folder_checks
from bpcore.testing.resume_checks import resume_checks
from bpcore.testing.rules import (
    CLASSIFICATION_TASKS,
    TEXT_TASKS,
    Check,
    ConformanceError,
    RuleSkipped,
    call_inputs,
    close,
    difference,
    item_count,
    prepared,
    run_finetune,
    show,
    single_inputs,
    state_of,
    task_for,
    variants_of,
)

if TYPE_CHECKING:
    from bpcore.testing.candidate import Candidate


# -- the checks -----------------------------------------------------------------------------------


def check_answers_have_the_task_shape(candidate: Candidate, task: str) -> None:
    """One answer per item, of the task's kind: text, ``{label: probability}``, a vector."""
    kwargs = call_inputs(candidate, task)
    answers = task_for(candidate, task, prepared(candidate, task))(**kwargs)
    rule = "answer-shape"
    if not isinstance(answers, list) or len(answers) != item_count(kwargs):
        raise ConformanceError(
            rule, f"{task}: expected a list of {item_count(kwargs)} answers, got {show(answers)}"
        )
    for index, answer in enumerate(answers):
        if task in TEXT_TASKS:
            generations = answer if task == "text-generation" and isinstance(answer, list) else [answer]
            if not all(isinstance(text, str) for text in generations):
                raise ConformanceError(rule, f"{task}: answer {index} is {show(answer)}, not text")
        elif task in CLASSIFICATION_TASKS:
            if not isinstance(answer, dict) or not answer:
                raise ConformanceError(
                    rule, f"{task}: answer {index} is {show(answer)}, not {{label: probability}}"
                )
            labels = kwargs.get("labels")
            if labels and set(answer) - set(labels):
                raise ConformanceError(
                    rule,
                    f"{task}: answer {index} has labels {show(sorted(set(answer) - set(labels)))} "
                    "it was not given",
                )
            values = list(answer.values())
            outside = [p for p in values if not (isinstance(p, float) and 0.0 <= p <= 1.0)]
            if outside:
                raise ConformanceError(
                    rule, f"{task}: answer {index} has probabilities outside [0, 1]: {show(outside)}"
                )
            if values != sorted(values, reverse=True):
                raise ConformanceError(
                    rule, f"{task}: answer {index} is not sorted by probability: {show(answer)}"
                )
            if labels and not math.isclose(sum(values), 1.0, abs_tol=1e-3):
                raise ConformanceError(
                    rule, f"{task}: answer {index} probabilities sum to {sum(values)}, not 1"
                )
        else:
            if not isinstance(answer, list) or not answer or not all(isinstance(x, float) for x in answer):
                raise ConformanceError(rule, f"{task}: answer {index} is not a list of floats")
            if len(answer) != len(answers[0]):
                raise ConformanceError(
                    rule, f"{task}: vectors have different sizes ({len(answer)}, {len(answers[0])})"
                )


def check_single_and_batched_answers_agree(candidate: Candidate, task: str) -> None:
    """Each item answered alone gets the answer it gets in a batch."""
    kwargs = call_inputs(candidate, task)
    task_object = task_for(candidate, task, prepared(candidate, task))
    batched = task_object(**kwargs)
    for index in range(item_count(kwargs)):
        alone = task_object(**single_inputs(kwargs, index))
        if not close(alone, batched[index]):
            raise ConformanceError(
                "single-equals-batched",
                f"{task}: item {index} alone and in a batch differ at {difference(alone, batched[index])}",
            )


def check_top_k(candidate: Candidate, task: str) -> None:
    """``top_k`` keeps the k most likely labels, in order."""
    kwargs = call_inputs(candidate, task)
    task_object = task_for(candidate, task, prepared(candidate, task))
    full = task_object(**kwargs)
    top = task_object(**kwargs, top_k=1)
    for index, (all_labels, kept) in enumerate(zip(full, top)):
        best = next(iter(all_labels))
        if list(kept) != [best] or not close(kept[best], all_labels[best]):
            raise ConformanceError(
                "top-k",
                f"{task}: item {index} with top_k=1 gives {kept}, expected {best!r} first of {all_labels}",
            )


def check_return_tensor(candidate: Candidate, task: str) -> None:
    """``return_tensor=True`` gives a tensor with a row per item, equal to the list answers, without gradients."""
    import torch

    kwargs = call_inputs(candidate, task)
    task_object = task_for(candidate, task, prepared(candidate, task))
    vectors = task_object(**kwargs)
    tensor = task_object(**kwargs, return_tensor=True)
    if not isinstance(tensor, torch.Tensor) or tensor.shape[0] != len(vectors):
        raise ConformanceError("return-tensor", f"{task}: return_tensor=True gave {type(tensor).__name__}")
    if tensor.requires_grad:
        raise ConformanceError("return-tensor", f"{task}: the returned tensor carries gradients")
    if not close(tensor.detach().cpu().tolist(), vectors):
        raise ConformanceError("return-tensor", f"{task}: the tensor and the list answers differ")
    single = task_object(**single_inputs(kwargs, 0), return_tensor=True)
    if not isinstance(single, torch.Tensor) or single.dim() != 1:
        raise ConformanceError(
            "return-tensor", f"{task}: one item with return_tensor=True should give a 1-D tensor"
        )


def check_deterministic_in_training_mode(candidate: Candidate, task: str) -> None:
    """A model left in training mode (dropout) answers the same twice: the first call makes it ``eval()``."""
    model = prepared(candidate, task)
    kwargs = call_inputs(candidate, task)
    kwargs.update(candidate.deterministic_inputs.get(task, {}))
    task_object = task_for(candidate, task, model)
    model.train()
    first, second = task_object(**kwargs), task_object(**kwargs)
    if not close(first, second, tolerance=1e-6):
        raise ConformanceError(
            "deterministic", f"{task}: two calls gave different answers at {difference(first, second)}"
        )
    if model.training:
        raise ConformanceError(
            "deterministic",
            f"{task}: the model is still in training mode after a call; calls must leave it in eval() mode",
        )


def check_thread_safe(candidate: Candidate, task: str) -> None:
    """Calls from many threads at once on one task object give exactly the sequential answers."""
    from concurrent.futures import ThreadPoolExecutor

    kwargs = call_inputs(candidate, task)
    kwargs.update(candidate.deterministic_inputs.get(task, {}))
    task_object = task_for(candidate, task, prepared(candidate, task))
    count = item_count(kwargs)
    singles = [single_inputs(kwargs, index) for index in range(count)]
    expected = [task_object(**single) for single in singles]
    threads, per_thread = candidate.thread_calls

    def calls(thread: int) -> list[tuple[int, Any]]:
        picks = [(thread * per_thread + call) % count for call in range(per_thread)]
        return [(index, task_object(**singles[index])) for index in picks]

    with ThreadPoolExecutor(threads) as pool:
        answers = [pair for result in pool.map(calls, range(threads)) for pair in result]
    wrong = [(index, answer) for index, answer in answers if answer != expected[index]]
    if wrong:
        index, answer = wrong[0]
        raise ConformanceError(
            "thread-safe",
            f"{task}: {len(wrong)} of {len(answers)} calls from {threads} threads differ from the same call "
            f"made alone, e.g. item {index} at {difference(answer, expected[index], tolerance=0.0)}. Keep no per-call "
            "state on the model (or set thread_safe = False on its class to be called one thread at a time)",
        )


def check_image_input_kinds(candidate: Candidate, task: str) -> None:
    """A path, a base64 string and a PIL image of the same picture give the same answer."""
    from bpcore.images import img_to_base64

    kwargs = single_inputs(call_inputs(candidate, task), 0)
    task_object = task_for(candidate, task, prepared(candidate, task))
    image = kwargs["image"]
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/image.png"
        image.save(path)
        answers = [task_object(**{**kwargs, "image": kind}) for kind in (image, path, img_to_base64(image))]
    if not (close(answers[0], answers[1]) and close(answers[0], answers[2])):
        raise ConformanceError(
            "image-input-kinds", f"{task}: PIL, path and base64 inputs give different answers"
        )


def check_save_load_gives_identical_answers(candidate: Candidate, task: str) -> None:
    """``bpcore.save`` then ``bpcore.load`` gives the same answers."""
    import bpcore

    model = prepared(candidate, task)
    kwargs = call_inputs(candidate, task)
    before = task_for(candidate, task, model)(**kwargs)
    with tempfile.TemporaryDirectory() as folder:
        bpcore.save(model, name=getattr(model, "name", None) or "conformance-model", path=f"{folder}/saved")
        loaded = candidate.load_saved(f"{folder}/saved", model)
        after = task_for(candidate, task, loaded)(**kwargs)
    if not close(before, after, tolerance=1e-5):
        raise ConformanceError(
            "save-load",
            f"{task}: answers differ after save and load at {difference(before, after, tolerance=1e-5)}",
        )


def check_finetuning_learns(candidate: Candidate, task: str, variant: str) -> None:
    """A short finetune changes the weights, lowers the loss on its own data, and survives save/load."""
    import bpcore

    model = candidate.build()
    task_object = task_for(candidate, task, model)
    before = state_of(model)
    history = run_finetune(candidate, task_object, task, variant, epochs=candidate.finetune_epochs)
    after = state_of(model)
    rule = "finetuning-learns"
    if all(
        key in before and before[key].shape == value.shape and bool((before[key] == value).all())
        for key, value in after.items()
    ):
        raise ConformanceError(rule, f"{task}/{variant}: finetuning left every weight unchanged")
    losses = history.val_loss
    if not min(losses[1:]) < losses[0]:
        raise ConformanceError(
            rule, f"{task}/{variant}: the loss on its own data did not go down: {show(losses)}"
        )
    if model.training:
        raise ConformanceError(
            rule, f"{task}/{variant}: the model was left in training mode after finetuning"
        )
    kwargs = call_inputs(candidate, task)
    if task in CLASSIFICATION_TASKS and variant is not None:
        kwargs.pop("labels", None)  # a finetuned classifier answers over its own labels
    answers = task_object(**kwargs)
    with tempfile.TemporaryDirectory() as folder:
        bpcore.save(model, name=getattr(model, "name", None) or "conformance-model", path=f"{folder}/saved")
        reloaded = task_for(candidate, task, candidate.load_saved(f"{folder}/saved", model))(**kwargs)
    if not close(answers, reloaded, tolerance=1e-5):
        raise ConformanceError(
            "save-load",
            f"{task}/{variant}: the finetuned model answers differently after save and load at "
            f"{difference(answers, reloaded, tolerance=1e-5)}",
        )


def check_plugin_module_imports_no_torch(candidate: Candidate) -> None:
    """Importing the model's plugin and listing its models imports neither torch nor a model library."""
    module = candidate.plugin_module()
    if module is None:
        raise RuleSkipped("light-plugin-module", f"{candidate.id} comes from no installed plugin")
    code = textwrap.dedent(
        f"""
        import importlib, sys
        import bpcore
        plugin = importlib.import_module({module!r})
        found = []
        for hook in ("register_models", "register_model_classes"):
            function = getattr(plugin, hook, None)
            if function is not None:
                function(lambda *args, **kwargs: found.append(kwargs or args))
        heavy = [name for name in ("torch", "transformers", "sentence_transformers", "open_clip", "timm", "PIL")
                 if name in sys.modules]
        print("HEAVY", heavy)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ConformanceError("light-plugin-module", f"importing {module} failed: {result.stderr[-500:]}")
    if "HEAVY []" not in result.stdout:
        raise ConformanceError(
            "light-plugin-module",
            f"importing {module} and listing its models imported {result.stdout.strip()}",
        )


def model_checks(candidate: Candidate) -> Iterator[Check]:
    """Every check that applies to ``candidate``: per task it declares, and per finetuning variant."""
    from functools import partial

    yield Check("light-plugin-module", None, check_plugin_module_imports_no_torch)
    for task in candidate.tasks:
        yield Check("answer-shape", task, partial(_with_task, check_answers_have_the_task_shape, task))
        yield Check(
            "single-equals-batched", task, partial(_with_task, check_single_and_batched_answers_agree, task)
        )
        yield Check("deterministic", task, partial(_with_task, check_deterministic_in_training_mode, task))
        yield Check("thread-safe", task, partial(_with_task, check_thread_safe, task))
        yield Check("save-load", task, partial(_with_task, check_save_load_gives_identical_answers, task))
        contract = CONTRACTS[task]
        if contract.top_k:
            yield Check("top-k", task, partial(_with_task, check_top_k, task))
        if "return_tensor" in contract.keywords:
            yield Check("return-tensor", task, partial(_with_task, check_return_tensor, task))
        if "image" in contract.item_fields:
            yield Check("image-input-kinds", task, partial(_with_task, check_image_input_kinds, task))
        yield Check("bad-input", task, partial(_with_task, fuzz.check_bad_input, task))
    for task in candidate.finetunable:
        for variant in variants_of(task):
            if (task, variant) in candidate.skip_variants:
                continue
            yield Check(
                "finetuning-learns",
                task,
                partial(_with_variant, check_finetuning_learns, task, variant),
                variant,
            )
            yield Check(
                "bad-input",
                task,
                partial(_with_variant, fuzz.check_bad_finetune_input, task, variant),
                variant,
            )
    # Both build on this module's helpers.

    yield from folder_checks(candidate)
    yield from resume_checks(candidate)


def _with_task(check: Callable[[Candidate, str], None], task: str, candidate: Candidate) -> None:
    check(candidate, task)


def _with_variant(
    check: Callable[[Candidate, str, str], None], task: str, variant: str, candidate: Candidate
) -> None:
    check(candidate, task, variant)
