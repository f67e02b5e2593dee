"""The model registry: what the loaded plugins declare, resolved by name, alias or task.

Besides models it holds the module paths plugins give their modules under ``bpcore.models``
and the model folder formats they recognise. Listing models imports neither torch nor any
model library (see :mod:`bpcore.plugins.specs`).
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import os
import pkgutil
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from bpcore.errors import (
    InputError,
    ModelNotFoundError,
    PluginNotInstalledError,
    TaskNotSupportedError,
)
from bpcore.plugins import manager
from bpcore.plugins.specs import ALIAS_PATH, MODULE_NAME, FolderFormat, ModelSpec, ModuleAlias
from bpcore.tasknames import INSTALL_HINTS, TASKS


@attrs.frozen
class RegistryProblem:
    """Something a plugin declared that the registry could not take."""

    plugin: str
    message: str


@attrs.frozen
class _Claim:
    """Who a name, alias or task default points to: one qualified name, or several when ambiguous."""

    owners: tuple[str, ...]
    tier: int


class Registry:
    """Every model the loaded plugins declare. Get the current one with :func:`get_registry`.

    Every model is reachable by its qualified name ``plugin/name``. An unqualified name, an
    alias or a task default that two plugins claim goes to the plugin of the better tier
    (the bpcore repository's distributions, then other installed plugins, then run-time
    plugins). Two installed third-party plugins claiming the same one make it ambiguous
    (an error that lists the qualified names), so installing a plugin never changes what a
    name loads; between run-time plugins the first registered keeps it. Every clash is a
    :class:`RegistryProblem` of the plugin that lost.
    """

    def __init__(self) -> None:
        #: Every spec, by qualified name ``plugin/name``.
        self.specs: dict[str, ModelSpec] = {}
        self.classes: dict[str, str] = {}
        self.problems: list[RegistryProblem] = []
        self._names: dict[str, _Claim] = {}
        self._aliases: dict[tuple[str, str], _Claim] = {}
        self._defaults: dict[str, _Claim] = {}
        #: ``bpcore.models.<path>`` → the plugin module(s) claiming it (several only when ambiguous).
        self.module_aliases: dict[str, tuple[ModuleAlias, ...]] = {}
        #: The folder formats plugins recognise, the better tier first.
        self.folder_formats: list[FolderFormat] = []

    # -- building ---------------------------------------------------------------------------
    def _claim(
        self, table: dict[Any, _Claim], key: Any, qualified: str, tier: int, plugin: str, what: str
    ) -> None:
        current = table.get(key)
        if current is None:
            table[key] = _Claim((qualified,), tier)
            return
        if qualified in current.owners:
            return
        if tier == manager.TIER_INSTALLED and current.tier == tier:
            table[key] = _Claim((*current.owners, qualified), tier)
            self.problems.append(
                RegistryProblem(
                    plugin,
                    f"{what} is also claimed by {', '.join(current.owners)}: it is now ambiguous; "
                    f"name the model by its qualified name ({', '.join(table[key].owners)})",
                )
            )
            return
        self.problems.append(
            RegistryProblem(
                plugin,
                f"{what} already means {current.owners[0]!r}, which keeps it; this plugin's model stays "
                f"reachable as {qualified!r}",
            )
        )

    def add(self, spec: ModelSpec, tier: int = manager.TIER_RUN_TIME) -> None:
        plugin = spec.plugin or "?"
        qualified = f"{plugin}/{spec.name}"
        if qualified in self.specs:
            self.problems.append(
                RegistryProblem(plugin, f"model {spec.name!r} is registered twice; kept the first")
            )
            return
        self.specs[qualified] = spec
        alias_owner = next(
            (
                claim
                for (alias, _), claim in self._aliases.items()
                if alias == spec.name and claim.tier <= tier
            ),
            None,
        )
        if alias_owner is not None:
            # A new model may not take a name that an earlier plugin already uses as an alias.
            self.problems.append(
                RegistryProblem(
                    plugin,
                    f"model name {spec.name!r} is already an alias of {alias_owner.owners[0]!r}, which keeps it; "
                    f"this plugin's model stays reachable as {qualified!r}",
                )
            )
        else:
            self._claim(self._names, spec.name, qualified, tier, plugin, f"model name {spec.name!r}")
        for alias, alias_tasks in spec.aliases.items():
            for task in alias_tasks or spec.tasks:
                if alias in self._names:
                    self.problems.append(
                        RegistryProblem(plugin, f"alias {alias!r} is already a model name; alias ignored")
                    )
                    break
                self._claim(
                    self._aliases, (alias, task), qualified, tier, plugin, f"alias {alias!r} for {task}"
                )
        for task in spec.default_for:
            self._claim(self._defaults, task, qualified, tier, plugin, f"the default for {task}")

    def add_module_alias(self, alias: ModuleAlias) -> None:
        """Claim ``bpcore.models.<alias.path>``; a path two plugins claim is decided as model names are."""
        current = self.module_aliases.get(alias.path)
        if current is None:
            self.module_aliases[alias.path] = (alias,)
            return
        if any(claim.plugin == alias.plugin for claim in current):
            if all(claim.target != alias.target for claim in current):
                self.problems.append(
                    RegistryProblem(
                        alias.plugin, f"module path {alias.module_name} is registered twice; kept the first"
                    )
                )
            return
        first = current[0]
        if alias.tier == manager.TIER_INSTALLED and first.tier == alias.tier:
            self.module_aliases[alias.path] = (*current, alias)
            owners = ", ".join(f"{claim.target} ({claim.plugin})" for claim in (*current, alias))
            self.problems.append(
                RegistryProblem(
                    alias.plugin,
                    f"module path {alias.module_name} is also claimed by {first.plugin}: it is now ambiguous; "
                    f"import the plugins' own modules ({owners})",
                )
            )
            return
        self.problems.append(
            RegistryProblem(
                alias.plugin,
                f"module path {alias.module_name} already means {first.target!r} (plugin {first.plugin}), which "
                f"keeps it; this plugin's module stays importable as {alias.target}",
            )
        )

    # -- queries ----------------------------------------------------------------------------
    def module_alias(self, path: str) -> tuple[ModuleAlias, ...]:
        """The module(s) ``bpcore.models.<path>`` stands for: none, one, or several when ambiguous."""
        return self.module_aliases.get(path, ())

    def list_models(
        self, task: str | None = None, pattern: str | None = None, plugin: str | None = None
    ) -> list[ModelSpec]:
        """Models sorted by name, filtered by task, by an fnmatch ``pattern`` (``"gpt2*"``) and by plugin.

        The pattern matches the name or the qualified name ``plugin/name``.
        """
        specs = sorted(self.specs.values(), key=lambda spec: (spec.name, spec.plugin or ""))
        if plugin is not None:
            specs = [spec for spec in specs if spec.plugin == plugin]
        if task is not None:
            check_task(task)
            specs = [spec for spec in specs if task in spec.tasks]
        if pattern:
            specs = [
                spec
                for spec in specs
                if fnmatch.fnmatch(spec.name, pattern) or fnmatch.fnmatch(qualified_name(spec), pattern)
            ]
        return specs

    def display_name(self, spec: ModelSpec) -> str:
        """The name a user can load ``spec`` by: its plain name if that means it, else ``plugin/name``."""
        claim = self._names.get(spec.name)
        if claim is not None and claim.owners == (qualified_name(spec),):
            return spec.name
        return qualified_name(spec)

    def loadable_classes(self) -> set[str]:
        """The ``module:Class`` paths a saved folder may name: the exported classes and every factory.

        A plugin whose factories are its model classes need not export them again.
        """
        return set(self.classes.values()) | {spec.factory for spec in self.specs.values()}

    def clashes(self) -> list[RegistryProblem]:
        return [
            problem
            for problem in self.problems
            if "already means" in problem.message or "ambiguous" in problem.message
        ]

    def aliases_of(self, spec: ModelSpec, task: str | None = None) -> list[str]:
        qualified = qualified_name(spec)
        return sorted(
            {
                alias
                for (alias, t), claim in self._aliases.items()
                if claim.owners == (qualified,) and task in (None, t)
            }
        )

    def _one(self, claim: _Claim, what: str) -> ModelSpec:
        if len(claim.owners) > 1:
            raise ModelNotFoundError(
                f"{what} is ambiguous: the plugins {', '.join(o.split('/')[0] for o in claim.owners)} all "
                f"claim it; use a qualified name: {', '.join(claim.owners)}"
            )
        return self.specs[claim.owners[0]]

    def default_for(self, task: str) -> ModelSpec:
        """The task's default: ``BPCORE_DEFAULTS`` if set for the task, else what the plugins declare."""
        check_task(task)
        chosen = user_defaults().get(task)
        if chosen is not None:
            try:
                return self.resolve(chosen, task=task)
            except ModelNotFoundError as error:
                raise ModelNotFoundError(f"BPCORE_DEFAULTS names {chosen!r} for {task}: {error}") from None
        claim = self._defaults.get(task)
        if claim is not None:
            return self._one(claim, f"the default model for {task}")
        candidates = self.list_models(task)
        if not candidates:
            raise PluginNotInstalledError(no_model_message(task))
        best_tier = min(_tier_of_spec(spec) for spec in candidates)
        return next(spec for spec in candidates if _tier_of_spec(spec) == best_tier)

    def finetune_default_for(self, task: str) -> ModelSpec | None:
        """Where finetuning starts when the task's default cannot be finetuned and the user chose no model.

        A model declaring ``default_finetune_for`` the task, else any finetunable one (the
        plugins' tiers first); None when no installed model can be finetuned for the task.
        """
        check_task(task)
        candidates = [spec for spec in self.list_models(task) if task in spec.finetunable]
        pool = [spec for spec in candidates if task in spec.default_finetune_for] or candidates
        if not pool:
            return None
        best_tier = min(_tier_of_spec(spec) for spec in pool)
        return next(spec for spec in pool if _tier_of_spec(spec) == best_tier)

    def resolve(
        self, name: str, task: str | None = None, aliases: Mapping[str, str] | None = None
    ) -> ModelSpec:
        """Find a model by name, qualified name ``plugin/name`` or alias (aliases can depend on ``task``)."""
        if aliases and name in aliases:
            name = aliases[name]
        spec = self.specs.get(name) if "/" in name else None
        claim = self._names.get(name)
        if spec is None and claim is not None:
            spec = self._one(claim, f"model name {name!r}")
        if spec is None and task is not None:
            alias_claim = self._aliases.get((name, task))
            spec = self._one(alias_claim, f"alias {name!r} for {task}") if alias_claim else None
        if spec is None and task is None:
            targets = {claim.owners for (alias, _), claim in self._aliases.items() if alias == name}
            if len(targets) > 1:
                raise ModelNotFoundError(
                    f"alias {name!r} means different models per task {sorted(o for t in targets for o in t)}: "
                    "name a task"
                )
            spec = self._one(_Claim(targets.pop(), 0), f"alias {name!r}") if targets else None
        if spec is None:
            known = list(self._names) + [alias for alias, _ in self._aliases] + list(self.specs)
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see `bpcore list-models`"
            raise ModelNotFoundError(
                f"no model named {name!r}{' for ' + task if task else ''}{hint}{failed_plugins_note()}"
            )
        if task is not None and task not in spec.tasks:
            raise TaskNotSupportedError(
                f"model {spec.name!r} does not support {task!r}; it supports {list(spec.tasks)}"
            )
        return spec


def qualified_name(spec: ModelSpec) -> str:
    return f"{spec.plugin or '?'}/{spec.name}"


def _tier_of_spec(spec: ModelSpec) -> int:
    info = manager.plugin_info(spec.plugin or "")
    return info.tier if info is not None else manager.TIER_RUN_TIME


def user_defaults() -> dict[str, str]:
    """``BPCORE_DEFAULTS="task=model,task=model"``: the user's choice of default model per task."""
    value = os.environ.get("BPCORE_DEFAULTS", "")
    chosen = {}
    for part in value.split(","):
        task, sep, name = part.partition("=")
        if not part.strip():
            continue
        if not sep or task.strip() not in TASKS or not name.strip():
            raise InputError(
                f"{part!r} is not TASK=MODEL with TASK one of {', '.join(TASKS)}", field="BPCORE_DEFAULTS"
            )
        chosen[task.strip()] = name.strip()
    return chosen


def failed_plugins_note() -> str:
    failed = manager.failed_plugins()
    if not failed:
        return ""
    listed = "; ".join(f"{info.name} ({info.error})" for info in failed)
    return f" (plugins that failed to load, whose models are missing: {listed}; see `bpcore plugins`)"


def no_model_message(task: str) -> str:
    """Why a task has no model: a plugin to install, or an installed one that offers nothing for it."""
    import importlib_metadata

    missing, present = [], []
    for distribution in INSTALL_HINTS[task]:
        try:
            importlib_metadata.distribution(distribution)
        except importlib_metadata.PackageNotFoundError:
            missing.append(distribution)
        else:
            present.append(distribution)
    message = f"no installed plugin offers a model for {task!r}"
    if missing:
        message += f": pip install {' or '.join(missing)}"
    if present:
        message += f" ({', '.join(present)} {'is' if len(present) == 1 else 'are'} installed but register no model for it"
        message += " here; is BPCORE_LOAD_PLUGINS limiting plugins?)"
    return message + failed_plugins_note()


def check_task(task: str) -> str:
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}", field="task")
    return task


def _call_hook(
    hook_name: str, registry: Registry, make_register: Callable[[str], Callable[..., None]]
) -> None:
    plugin_manager = manager.get_plugin_manager()
    impls = getattr(plugin_manager.hook, hook_name).get_hookimpls()
    # pluggy keeps registration order; clashes are decided by tier first.
    ranked = sorted(enumerate(impls), key=lambda item: (_tier_of_plugin(item[1].plugin_name), item[0]))
    for _, impl in ranked:
        try:
            impl.function(register=make_register(impl.plugin_name))
        # One plugin's bug must not hide the others' models, not even a sys.exit() in a hook.
        except (Exception, SystemExit) as error:
            registry.problems.append(
                RegistryProblem(impl.plugin_name, f"{hook_name} failed: {manager._describe(error)}")
            )


def _tier_of_plugin(name: str) -> int:
    info = manager.plugin_info(name)
    return info.tier if info is not None else manager.TIER_RUN_TIME


def _build_registry() -> Registry:
    registry = Registry()

    def model_register(plugin_name: str) -> Callable[..., None]:
        def register(spec: ModelSpec | None = None, /, **fields: Any) -> None:
            try:
                if spec is None:
                    spec = ModelSpec(**fields)
                registry.add(attrs.evolve(spec, plugin=plugin_name), tier=_tier_of_plugin(plugin_name))
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
    _call_hook("register_module_aliases", registry, lambda plugin: _alias_register(registry, plugin))
    _call_hook("register_folder_formats", registry, lambda plugin: _format_register(registry, plugin))
    registry.classes.update(
        {
            name: target
            for name, target in _factory_classes(registry.specs.values())
            if name not in registry.classes
        }
    )
    return registry


@functools.cache
def _core_model_modules() -> frozenset[str]:
    """The modules and packages of ``bpcore.models`` itself (found on disk: importing them here would be circular)."""
    folder = Path(__file__).resolve().parents[1] / "models"
    return frozenset(module.name for module in pkgutil.iter_modules([str(folder)]))


def _alias_register(registry: Registry, plugin_name: str) -> Callable[..., None]:
    def register(path: str, target: str, /) -> None:
        if not isinstance(path, str) or not ALIAS_PATH.fullmatch(path):
            why = "is not a module path (lowercase identifiers joined by dots, e.g. 'clip.model')"
        elif not isinstance(target, str) or not MODULE_NAME.fullmatch(target):
            why = f"points at {target!r}, which is not a module name ('package.module')"
        elif path.split(".")[0] in _core_model_modules():
            why = "is a module of bpcore itself, which always wins"
        else:
            alias = ModuleAlias(path, target, plugin_name, _tier_of_plugin(plugin_name))
            registry.add_module_alias(alias)
            return
        registry.problems.append(RegistryProblem(plugin_name, f"module path {path!r} {why}; ignored"))

    return register


def _format_register(registry: Registry, plugin_name: str) -> Callable[..., None]:
    def register(*, name: str, recognise: str, description: str) -> None:
        try:
            if not isinstance(name, str) or not name or not isinstance(description, str):
                raise InputError("name and description must be non-empty strings", field="name")
            registry.folder_formats.append(
                FolderFormat(name, recognise, description, plugin_name, _tier_of_plugin(plugin_name))
            )
        except InputError as error:
            registry.problems.append(
                RegistryProblem(plugin_name, f"malformed folder format {name!r}: {error}")
            )

    return register


def _factory_classes(specs: Iterable[ModelSpec]) -> Iterator[tuple[str, str]]:
    """``(Class, "module:Class")`` for every factory that names a class: each is exported too.

    A plugin declares its model class once, as a factory; ``register_model_classes`` is only for
    classes no model names (a family's base class). A factory function is not exported.
    """
    for spec in specs:
        attribute = spec.factory.rpartition(":")[2].rpartition(".")[2]
        if attribute.isidentifier() and attribute[:1].isupper():
            yield attribute, spec.factory


_lock = threading.Lock()
_cached: tuple[int, Registry] | None = None
_here = threading.local()


def get_registry() -> Registry:
    """The registry for the plugins loaded now (rebuilt when a plugin is added or removed)."""
    global _cached
    with _lock:
        _here.building = True
        try:
            current = manager.generation()
            if _cached is None or _cached[0] != current:
                _cached = (current, _build_registry())
            return _cached[1]
        finally:
            _here.building = False


def building_here() -> bool:
    """Whether this thread is loading plugins or building the registry now.

    The import hook of ``bpcore.models`` aliases asks it: a plugin importing an unknown
    ``bpcore.models.<name>`` while it loads must not wait for the registry it is part of.
    """
    return bool(getattr(_here, "building", False))


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object (a module or class with ``@hookimpl`` functions) at run time.

    ``plugin`` is the object whose hooks run; ``name`` is the plugin's name (default: one made
    from the object), which it is listed and unregistered under. Returns that name. A name of the
    new plugin's that means another plugin's model is warned about at once.

    Example::

        class MyPlugin:
            @bpcore.hookimpl
            def register_models(self, register):
                register(name="my-model", factory="my_pkg:MyModel", tasks=["emotion"])

        bpcore.register_plugin(MyPlugin())
    """
    registered = manager.add_plugin(plugin, name=name)
    for problem in get_registry().clashes():
        if problem.plugin == registered:
            warnings.warn(f"plugin {registered!r}: {problem.message}", UserWarning, stacklevel=2)
    return registered
