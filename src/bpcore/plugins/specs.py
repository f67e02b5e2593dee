"""What a plugin declares: a :class:`ModelSpec` per model, module paths (:class:`ModuleAlias`),
folder formats (:class:`FolderFormat`), and the ``register`` callables its hooks get.

Plain metadata: nothing here imports torch or a model library. A spec's ``factory``
(``"module:attr"``), an alias's target module and a format's recogniser are imported only when used.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from bpcore.errors import BpcoreError, InputError, ModelLoadError
from bpcore.naming import NAME_PATTERN
from bpcore.tasknames import TASKS


def _tuple_of_str(value: Iterable[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _check_tasks(instance: Any, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    unknown = [task for task in value if task not in TASKS]
    if unknown:
        raise InputError(f"unknown task(s) {unknown}; tasks are {list(TASKS)}", field=attribute.name)


def _check_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise InputError(f"{value!r} is not a valid model name", field=attribute.name)


def _check_factory(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or value.count(":") != 1 or not all(value.split(":")):
        raise InputError(f"{value!r} must look like 'package.module:attribute'", field=attribute.name)


def _aliases(value: Mapping[str, Iterable[str] | str] | Iterable[str]) -> dict[str, tuple[str, ...]]:
    if isinstance(value, Mapping):
        return {alias: _tuple_of_str(tasks) for alias, tasks in value.items()}
    return {alias: () for alias in value}


@attrs.frozen
class ModelSpec:
    """A model a plugin offers.

    ``factory`` is called as ``factory(**init_kwargs, name=..., description=..., tasks=...,
    details=..., device=...)`` and returns the model. ``aliases`` maps an alias to the tasks it
    stands for (an empty tuple: every task of the model), e.g. ``{"english-base": ["text-vectorisation"]}``.
    """

    name: str = attrs.field(validator=_check_name)
    factory: str = attrs.field(validator=_check_factory)
    tasks: tuple[str, ...] = attrs.field(converter=_tuple_of_str, validator=_check_tasks)
    description: str = ""
    aliases: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_aliases)
    finetunable: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str, validator=_check_tasks)
    default_for: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str, validator=_check_tasks)
    #: Tasks this model is the starting point for when the task's default cannot be finetuned
    #: (spec 2.3.2: ``TextClassification().finetune(params)`` sets up a finetunable model).
    default_finetune_for: tuple[str, ...] = attrs.field(
        default=(), converter=_tuple_of_str, validator=_check_tasks
    )
    init_kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    details: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    plugin: str | None = None

    def __attrs_post_init__(self) -> None:
        for field in ("finetunable", "default_for"):
            extra = set(getattr(self, field)) - set(self.tasks)
            if extra:
                raise InputError(
                    f"{sorted(extra)} are not among the model's tasks {list(self.tasks)}", field=field
                )
        extra = set(self.default_finetune_for) - set(self.finetunable)
        if extra:
            raise InputError(
                f"{sorted(extra)} are not among the tasks the model can be finetuned for {list(self.finetunable)}",
                field="default_finetune_for",
            )
        for alias, tasks in self.aliases.items():
            if not NAME_PATTERN.match(alias):
                raise InputError(f"{alias!r} is not a valid alias", field="aliases")
            if set(tasks) - set(self.tasks):
                raise InputError(f"alias {alias!r} names tasks the model lacks", field="aliases")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description, as ``list_models`` returns it."""
        return {
            "name": self.name,
            "qualified_name": f"{self.plugin or '?'}/{self.name}",
            "description": self.description,
            "tasks": list(self.tasks),
            "finetunable": list(self.finetunable),
            "default_for": list(self.default_for),
            "default_finetune_for": list(self.default_finetune_for),
            "aliases": sorted(self.aliases),
            "details": dict(self.details),
            "plugin": self.plugin,
        }

    def load(self, device: str | None = None, **overrides: Any) -> Any:
        """Import the factory and build the model; ``overrides`` go to the factory over ``init_kwargs``.

        Whatever goes wrong in the plugin's code (an import error, a syntax error, arguments the
        factory does not take, an exception while building) becomes a :class:`ModelLoadError`
        naming the model, its plugin and the cause; bpcore errors the factory raises itself
        (which already say what to do) pass through.
        """
        where = f"model {self.name!r} of plugin {self.plugin!r}" if self.plugin else f"model {self.name!r}"
        try:
            factory = import_object(self.factory)
        except Exception as error:
            raise ModelLoadError(
                f"{where} needs {self.factory}, which cannot be imported ({type(error).__name__}: {error}); "
                "reinstall or fix the plugin"
            ) from error
        reserved = sorted(set(overrides) & {"name", "description", "tasks", "details", "device"})
        if reserved:
            raise InputError(f"{reserved[0]} is set by the registry, not by a keyword", field=reserved[0])
        try:
            return factory(
                **{**self.init_kwargs, **overrides},
                name=self.name,
                description=self.description,
                tasks=list(self.tasks),
                details=dict(self.details),
                device=device,
            )
        except BpcoreError:
            raise
        except Exception as error:
            raise ModelLoadError(
                f"{where} could not be built by {self.factory} ({type(error).__name__}: {error})"
            ) from error


def import_object(path: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module_name, _, attr_path = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        target = getattr(target, part)
    return target


class RegisterModel(Protocol):
    def __call__(self, spec: ModelSpec | None = None, /, **fields: Any) -> None: ...


class RegisterClass(Protocol):
    def __call__(self, name: str, target: str, /) -> None: ...


class RegisterModuleAlias(Protocol):
    def __call__(self, path: str, target: str, /) -> None: ...


class RegisterFolderFormat(Protocol):
    def __call__(self, *, name: str, recognise: str, description: str) -> None: ...


#: A module path under ``bpcore.models``: lowercase identifiers joined by dots (``"clip.model"``).
ALIAS_PATH = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*")
#: A module to import: identifiers joined by dots (``"bp_clip.model"``).
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@attrs.frozen
class ModuleAlias:
    """``bpcore.models.<path>`` is the module ``target`` (a plugin's, imported when the alias is)."""

    path: str
    target: str
    plugin: str
    tier: int

    @property
    def module_name(self) -> str:
        return f"bpcore.models.{self.path}"


@attrs.frozen
class FolderFormat:
    """A kind of model folder (or file) a plugin loads, and the function that recognises one.

    ``recognise`` (``"module:function"``) is imported only when a path needs recognising; it is
    called as ``recognise(path, task)`` and returns None or what to load (see docs/plugins/hooks.md).
    """

    name: str
    recognise: str = attrs.field(validator=_check_factory)
    description: str
    plugin: str
    tier: int

    def label(self) -> str:
        return f"{self.plugin}/{self.name}"
