"""The model registry: what plugins declare, resolved by name, alias or task.

Listing models imports neither torch nor any model library: a :class:`ModelSpec` is plain
metadata, and its ``factory`` (``"module:attr"``) is imported only when the model is loaded.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

from bpcore import plugins
from bpcore.errors import (
    InputError,
    ModelLoadError,
    ModelNotFoundError,
    PluginNotInstalledError,
    TaskNotSupportedError,
)
from bpcore.naming import NAME_PATTERN
from bpcore.tasknames import INSTALL_HINTS, TASKS


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
        for alias, tasks in self.aliases.items():
            if not NAME_PATTERN.match(alias):
                raise InputError(f"{alias!r} is not a valid alias", field="aliases")
            if set(tasks) - set(self.tasks):
                raise InputError(f"alias {alias!r} names tasks the model lacks", field="aliases")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description, as ``list_models`` returns it."""
        return {
            "name": self.name,
            "description": self.description,
            "tasks": list(self.tasks),
            "finetunable": list(self.finetunable),
            "default_for": list(self.default_for),
            "aliases": sorted(self.aliases),
            "details": dict(self.details),
            "plugin": self.plugin,
        }

    def load(self, device: str | None = None) -> Any:
        """Import the factory and build the model."""
        try:
            factory = import_object(self.factory)
        except (ImportError, AttributeError) as error:
            raise ModelLoadError(
                f"model {self.name!r} needs {self.factory}, which cannot be imported ({error}); "
                f"reinstall its plugin{' ' + repr(self.plugin) if self.plugin else ''}"
            ) from None
        return factory(
            **self.init_kwargs,
            name=self.name,
            description=self.description,
            tasks=list(self.tasks),
            details=dict(self.details),
            device=device,
        )


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


@attrs.frozen
class RegistryProblem:
    """Something a plugin declared that the registry could not take."""

    plugin: str
    message: str


class Registry:
    """Every model the loaded plugins declare. Get the current one with :func:`get_registry`."""

    def __init__(self) -> None:
        self.specs: dict[str, ModelSpec] = {}
        self.classes: dict[str, str] = {}
        self.problems: list[RegistryProblem] = []
        self._aliases: dict[tuple[str, str], str] = {}
        self._defaults: dict[str, str] = {}

    # -- building ---------------------------------------------------------------------------
    def add(self, spec: ModelSpec) -> None:
        owner = self.specs.get(spec.name)
        if owner is not None:
            self.problems.append(
                RegistryProblem(
                    spec.plugin or "?",
                    f"model {spec.name!r} is already registered by {owner.plugin!r}; kept theirs",
                )
            )
            return
        self.specs[spec.name] = spec
        for alias, alias_tasks in spec.aliases.items():
            for task in alias_tasks or spec.tasks:
                taken = self._aliases.setdefault((alias, task), spec.name)
                if taken != spec.name:
                    self.problems.append(
                        RegistryProblem(
                            spec.plugin or "?", f"alias {alias!r} for {task} already means {taken!r}"
                        )
                    )
        for task in spec.default_for:
            self._defaults.setdefault(task, spec.name)

    # -- queries ----------------------------------------------------------------------------
    def list_models(self, task: str | None = None, pattern: str | None = None) -> list[ModelSpec]:
        """Models sorted by name, filtered by task and by an fnmatch ``pattern`` (``"gpt2*"``)."""
        specs = sorted(self.specs.values(), key=lambda spec: spec.name)
        if task is not None:
            check_task(task)
            specs = [spec for spec in specs if task in spec.tasks]
        if pattern:
            specs = [spec for spec in specs if fnmatch.fnmatch(spec.name, pattern)]
        return specs

    def aliases_of(self, name: str, task: str | None = None) -> list[str]:
        return sorted(
            {alias for (alias, t), target in self._aliases.items() if target == name and task in (None, t)}
        )

    def default_for(self, task: str) -> ModelSpec:
        check_task(task)
        name = self._defaults.get(task)
        if name is None:
            candidates = self.list_models(task)
            if not candidates:
                raise PluginNotInstalledError(
                    f"no installed plugin offers a model for {task!r}: pip install {INSTALL_HINTS[task]}"
                )
            name = candidates[0].name
        return self.specs[name]

    def resolve(
        self, name: str, task: str | None = None, aliases: Mapping[str, str] | None = None
    ) -> ModelSpec:
        """Find a model by name or alias (aliases can depend on ``task``)."""
        if aliases and name in aliases:
            name = aliases[name]
        spec = self.specs.get(name)
        if spec is None and task is not None:
            target = self._aliases.get((name, task))
            spec = self.specs.get(target) if target else None
        if spec is None and task is None:
            targets = {target for (alias, _), target in self._aliases.items() if alias == name}
            if len(targets) > 1:
                raise ModelNotFoundError(
                    f"alias {name!r} means different models per task {sorted(targets)}: name a task"
                )
            spec = self.specs.get(targets.pop()) if targets else None
        if spec is None:
            known = list(self.specs) + [alias for alias, _ in self._aliases]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see `bpcore list-models`"
            raise ModelNotFoundError(f"no model named {name!r}{' for ' + task if task else ''}{hint}")
        if task is not None and task not in spec.tasks:
            raise TaskNotSupportedError(
                f"model {spec.name!r} does not support {task!r}; it supports {list(spec.tasks)}"
            )
        return spec


def check_task(task: str) -> str:
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}", field="task")
    return task


def _call_hook(
    hook_name: str, registry: Registry, make_register: Callable[[str], Callable[..., None]]
) -> None:
    manager = plugins.get_plugin_manager()
    for impl in getattr(manager.hook, hook_name).get_hookimpls():
        try:
            impl.function(register=make_register(impl.plugin_name))
        except Exception as error:  # one plugin's bug must not hide the others' models
            registry.problems.append(
                RegistryProblem(impl.plugin_name, f"{hook_name} failed: {plugins._describe(error)}")
            )


def _build_registry() -> Registry:
    registry = Registry()

    def model_register(plugin_name: str) -> Callable[..., None]:
        def register(spec: ModelSpec | None = None, /, **fields: Any) -> None:
            try:
                if spec is None:
                    spec = ModelSpec(**fields)
                registry.add(attrs.evolve(spec, plugin=plugin_name))
            except (InputError, TypeError) as error:
                label = fields.get("name") or getattr(spec, "name", "?")
                registry.problems.append(RegistryProblem(plugin_name, f"malformed model {label!r}: {error}"))

        return register

    def class_register(plugin_name: str) -> Callable[..., None]:
        def register(name: str, target: str, /) -> None:
            if not name.isidentifier() or ":" not in target:
                registry.problems.append(
                    RegistryProblem(plugin_name, f"malformed class export {name!r} -> {target!r}")
                )
                return
            registry.classes.setdefault(name, target)

        return register

    _call_hook("register_models", registry, model_register)
    _call_hook("register_model_classes", registry, class_register)
    return registry


_lock = threading.Lock()
_cached: tuple[int, Registry] | None = None


def get_registry() -> Registry:
    """The registry for the plugins loaded now (rebuilt when a plugin is added or removed)."""
    global _cached
    with _lock:
        current = plugins.generation()
        if _cached is None or _cached[0] != current:
            _cached = (current, _build_registry())
        return _cached[1]
