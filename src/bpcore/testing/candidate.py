"""A model to check: :class:`Candidate` (how to build a fresh one, and what it claims)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs


def _adamw(parameters: Iterable[Any]) -> Any:
    import torch

    return torch.optim.AdamW([p for p in parameters if p.requires_grad], lr=1e-3)


@attrs.frozen
class Candidate:
    """A model to check: how to build a fresh one, and what it claims.

    ``inputs`` overrides a task's sample call arguments (e.g. ``{"image-classification":
    {"labels": None}}`` for a model that answers over its own labels); ``needs_finetuning``
    names tasks whose inference needs a short finetune first (a classifier with no labels of
    its own yet); ``optimizer`` builds the optimizer of the short finetunes (default AdamW,
    learning rate 1e-3, so a tiny model shows learning in a few steps); ``finetune_data``
    overrides the sample ``params`` per ``(task, variant)``; ``fuzz_examples`` sets how many
    malformed inputs the ``bad-input`` rule tries per task call and per finetuning variant.
    """

    factory: Callable[[], Any]
    tasks: Sequence[str] = attrs.field(converter=tuple)
    finetunable: Sequence[str] = attrs.field(default=(), converter=tuple)
    name: str = ""
    inputs: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    deterministic_inputs: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    finetune_data: Mapping[tuple[str, str], Mapping[str, Any]] = attrs.field(factory=dict)
    needs_finetuning: Sequence[str] = attrs.field(default=(), converter=tuple)
    skip_variants: Sequence[tuple[str, str]] = attrs.field(default=(), converter=tuple)
    optimizer: Callable[[Iterable[Any]], Any] | None = _adamw
    finetune_epochs: int = 4
    plugin: str | None = None
    #: ``(per task call, per finetuning variant)`` malformed inputs of the ``bad-input`` rule
    #: (None: :data:`bpcore.testing.fuzz.CALL_EXAMPLES`, :data:`~bpcore.testing.fuzz.FINETUNE_EXAMPLES`).
    fuzz_examples: tuple[int, int] | None = None
    #: ``(threads, calls per thread)`` of the ``thread-safe`` rule: fewer for a model whose every
    #: call is slow (a random tiny generator that never stops early).
    thread_calls: tuple[int, int] = (8, 64)

    def build(self) -> Any:
        return self.factory()

    @property
    def id(self) -> str:
        return self.name or getattr(self.factory, "__name__", type(self.factory).__name__)

    def plugin_module(self) -> str | None:
        """The entry-point module of the plugin this model comes from (None: not from an installed plugin)."""
        import importlib_metadata

        entry_points = list(importlib_metadata.entry_points(group="bpcore"))
        if self.plugin is not None:
            return next((ep.module for ep in entry_points if ep.name == self.plugin), None)
        package = getattr(self.factory, "__module__", "").split(".")[0]
        return next((ep.module for ep in entry_points if ep.module.split(".")[0] == package), None)

    @classmethod
    def registered(cls, name: str, **overrides: Any) -> Candidate:
        """The candidate for a registered model name (its tasks and finetunable tasks from the registry)."""
        from bpcore.models import AutoModel
        from bpcore.plugins.registry import get_registry

        spec = get_registry().resolve(name)
        fields: dict[str, Any] = {
            "factory": lambda: AutoModel.from_pretrained(name),
            "tasks": spec.tasks,
            "finetunable": spec.finetunable,
            "name": name,
            "plugin": spec.plugin,
        }
        return cls(**{**fields, **overrides})


def as_candidate(model: Candidate | str | Callable[[], Any]) -> Candidate:
    if isinstance(model, Candidate):
        return model
    if isinstance(model, str):
        return Candidate.registered(model)
    built = model()
    finetunable = [task for task in built.tasks if getattr(built, "can_finetune", lambda task: False)(task)]
    return Candidate(model, tasks=built.tasks, finetunable=finetunable)
