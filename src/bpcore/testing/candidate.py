"""A model to check: :class:`Candidate` (how to build a fresh one, and what it claims)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs


def _adamw(parameters: Iterable[Any]) -> Any:
    import torch

    return torch.optim.AdamW([p for p in parameters if p.requires_grad], lr=1e-3)


@attrs.frozen
class Candidate:
    """A model to check: how to build a fresh one, and what it claims.

    :ivar factory: builds a fresh model (a class, or a function returning one); called once per rule.
    :ivar tasks: the tasks the model serves: each gets the per-task rules.
    :ivar finetunable: the tasks it finetunes for: each variant gets ``finetuning-learns`` and ``bad-input``.
    :ivar name: the id in test names and messages (default: the factory's name).
    :ivar inputs: per task, call arguments that replace the kit's sample ones (e.g.
        ``{"image-classification": {"labels": None}}`` for a model that answers over its own labels).
    :ivar deterministic_inputs: per task, call arguments added to the sample ones in the
        ``deterministic`` and ``thread-safe`` rules, which compare two answers exactly: for a model
        that samples (``{"text-generation": {"do_sample": False}}``).
    :ivar finetune_data: per ``(task, variant)``, finetuning params that replace the sample ones.
    :ivar needs_finetuning: tasks whose inference needs a short finetune first (a classifier with
        no labels of its own yet).
    :ivar skip_variants: ``(task, variant)`` pairs the finetuning rules (``finetuning-learns``,
        ``bad-input``, ``resume``) leave out: a variant the model cannot finetune for.
    :ivar optimizer: builds the optimizer of the short finetunes from the parameters (default
        AdamW at 1e-3, so a tiny model shows learning in a few steps; None: the task's default).
    :ivar finetune_epochs: epochs of the ``finetuning-learns`` finetunes.
    :ivar plugin: the entry-point name of the plugin the model comes from, for the
        ``light-plugin-module`` rule (None: the plugin whose package defines the factory, if any).
    :ivar fuzz_examples: ``(per task call, per finetuning variant)`` malformed inputs of the
        ``bad-input`` rule.
    :ivar thread_calls: ``(threads, calls per thread)`` of the ``thread-safe`` rule.
    :ivar trust_code: load the models the kit saves trusting the class the candidate builds,
        and only that class (:meth:`load_saved`): for a model class defined in a test module,
        which no plugin registers. Leave it off for a plugin's model, so that ``save-load`` also
        checks that ``bpcore.load`` rebuilds it as a user's call would.

    Example::

        from bpcore.testing import Candidate, check_model

        check_model(Candidate(MyModel, tasks=["text-vectorisation"], trust_code=True))
        check_model(Candidate.registered("my-model", skip_variants=[("text-vectorisation", "triplet")]))
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
    trust_code: bool = False

    def build(self) -> Any:
        """A fresh model from :attr:`factory`."""
        return self.factory()

    def load_saved(self, folder: str | os.PathLike[str], saved: Any) -> Any:
        """Load the folder the kit saved ``saved`` into, as a user's ``bpcore.load(folder)`` would.

        With :attr:`trust_code`, the class of ``saved`` is trusted: the candidate built it, so the
        test runs its code already. No other class is, so a damaged folder naming another class is
        still refused (:class:`bpcore.UnsafeLoadError`).

        :param folder: the saved folder.
        :param saved: the model that was saved into it.
        """
        import bpcore
        from bpcore.errors import UnsafeLoadError

        built = f"{type(saved).__module__}:{type(saved).__qualname__}"
        ours = _named_class(folder) == built
        try:
            return bpcore.load(folder, trust_code=self.trust_code and ours)
        except UnsafeLoadError as error:
            if self.trust_code or not ours:
                raise
            raise UnsafeLoadError(
                f"{error}. A plugin's model class must be registered (a model's factory, or "
                "register_model_classes); for a class defined in a test module, pass "
                "Candidate(..., trust_code=True)"
            ) from None

    @property
    def id(self) -> str:
        """The candidate's name in test ids and messages: :attr:`name`, else the factory's name."""
        return self.name or getattr(self.factory, "__name__", type(self.factory).__name__)

    def plugin_module(self) -> str | None:
        """The entry-point module of the plugin this model comes from (None: not from an installed plugin).

        :attr:`plugin` names it; else it is the plugin whose package defines the factory.
        """
        import importlib_metadata

        entry_points = list(importlib_metadata.entry_points(group="bpcore"))
        if self.plugin is not None:
            return next((ep.module for ep in entry_points if ep.name == self.plugin), None)
        package = getattr(self.factory, "__module__", "").split(".")[0]
        return next((ep.module for ep in entry_points if ep.module.split(".")[0] == package), None)

    @classmethod
    def registered(cls, name: str, **overrides: Any) -> Candidate:
        """The candidate for a registered model name: its tasks, finetunable tasks and plugin from the registry.

        The model is built by its plugin's factory (``AutoModel.from_pretrained(name)``), as a
        user gets it. A plain string given to :func:`parametrize_with_checks` means exactly this.

        :param name: the registered name (or alias, or ``plugin/name``).
        :param overrides: any other :class:`Candidate` field (``inputs``, ``skip_variants``, ...),
            or one of the registry's (``tasks``) to check fewer.

        Example::

            Candidate.registered("all-minilm-l6-v2", fuzz_examples=(20, 5))
        """
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


def _named_class(folder: str | os.PathLike[str]) -> Any:
    """The class a saved folder's ``config.json`` names (None if it names none: the load says why)."""
    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("class")
    except (OSError, ValueError, AttributeError):
        return None


def as_candidate(model: Candidate | str | Callable[[], Any]) -> Candidate:
    """A :class:`Candidate` for what :func:`~bpcore.testing.check_model` was given.

    A registered name becomes :meth:`Candidate.registered`; a factory is called once to read the
    tasks it serves and can finetune.
    """
    if isinstance(model, Candidate):
        return model
    if isinstance(model, str):
        return Candidate.registered(model)
    built = model()
    finetunable = [task for task in built.tasks if getattr(built, "can_finetune", lambda task: False)(task)]
    return Candidate(model, tasks=built.tasks, finetunable=finetunable)
