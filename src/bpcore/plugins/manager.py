"""Finding plugins: the ``bpcore`` entry-point group, plus plugins registered at run time.

Each entry point is loaded on its own, so a plugin that fails to import is recorded and
reported by ``bpcore plugins`` instead of breaking every other plugin.
Set ``BPCORE_LOAD_PLUGINS`` to a comma-separated list of entry-point names to load only those
(an empty value loads none).

Plugins rank in three tiers, which decide name clashes (see :mod:`bpcore.plugins.registry`): the
distributions of the bpcore repository (:data:`FIRST_PARTY`), then other installed plugins,
then plugins registered at run time with :func:`register_plugin`.
"""

from __future__ import annotations

import difflib
import os
import threading
from typing import Any

import attrs
import importlib_metadata
import pluggy

from bpcore.plugins import hookspecs

ENTRY_POINT_GROUP = "bpcore"

#: The distributions of this repository: their names, aliases and defaults win clashes.
FIRST_PARTY = frozenset({"bp-st", "bp-hf", "bp-clip", "bp-effnet"})
TIER_FIRST_PARTY, TIER_INSTALLED, TIER_RUN_TIME = 0, 1, 2


@attrs.frozen
class PluginInfo:
    """What ``bpcore plugins`` reports about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    #: Mistakes in the plugin's hooks that make bpcore ignore them (misspelled or unmarked).
    problems: tuple[str, ...] = ()
    tier: int = TIER_RUN_TIME

    @property
    def first_party(self) -> bool:
        return self.tier == TIER_FIRST_PARTY


def _canonical(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


def tier_of(distribution: str | None) -> int:
    if distribution is None:
        return TIER_RUN_TIME
    return TIER_FIRST_PARTY if _canonical(distribution) in FIRST_PARTY else TIER_INSTALLED


def hook_problems(plugin: Any) -> tuple[str, ...]:
    """Hooks bpcore would silently ignore: misspelled hook names, and hook functions without ``@hookimpl``.

    pluggy accepts a marked function whose name matches no hook (it is never called) and
    ignores an unmarked one; both look to the plugin author like a plugin with no models.
    """
    hook_names = [name for name in dir(hookspecs) if name.startswith("register_")]
    problems = []
    for attribute in sorted(dir(plugin)):
        if attribute.startswith("_"):
            continue
        try:
            value = getattr(plugin, attribute)
        except Exception:
            continue
        if not callable(value):
            continue
        marked = getattr(value, "bpcore_impl", None) is not None
        if marked and attribute not in hook_names:
            close = difflib.get_close_matches(attribute, hook_names, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; the hooks are {', '.join(hook_names)}"
            problems.append(
                f"{attribute} is marked @hookimpl but is no bpcore hook, so it is never called{hint}"
            )
        elif not marked and attribute in hook_names:
            problems.append(f"{attribute} is not marked @bpcore.hookimpl, so bpcore never calls it")
        elif not marked and (similar := difflib.get_close_matches(attribute, hook_names, n=1, cutoff=0.85)):
            problems.append(
                f"{attribute} looks like a misspelled {similar[0]} (and is not marked @bpcore.hookimpl)"
            )
    return tuple(problems)


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
# Bumped on every change of the plugin set, so the registry knows to rebuild itself.
_generation = 0


def _allowed_entry_points() -> set[str] | None:
    value = os.environ.get("BPCORE_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _entry_point_order(entry_point: Any) -> tuple[int, str]:
    dist = entry_point.dist
    return tier_of(dist.name if dist else ""), entry_point.name


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    allowed = _allowed_entry_points()
    entry_points = sorted(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP), key=_entry_point_order)
    for entry_point in entry_points:
        if allowed is not None and entry_point.name not in allowed:
            continue
        if manager.has_plugin(entry_point.name):
            continue
        dist = entry_point.dist
        info = PluginInfo(
            name=entry_point.name,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
            tier=tier_of(dist.name if dist else ""),
        )
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=entry_point.name)
            info = attrs.evolve(info, problems=hook_problems(plugin))
        # A broken plugin is reported, never fatal: not even one that calls sys.exit() on import.
        except (Exception, SystemExit) as error:
            info = attrs.evolve(info, error=_describe(error))
        _infos[entry_point.name] = info


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every installed plugin loaded."""
    global _manager
    with _lock:
        if _manager is None:
            manager = pluggy.PluginManager("bpcore")
            manager.add_hookspecs(hookspecs)
            _load_entry_points(manager)
            _manager = manager
        return _manager


def add_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object at run time (:func:`bpcore.register_plugin`, which users call, adds the clash warning)."""
    global _generation
    with _lock:
        manager = get_plugin_manager()
        registered = manager.register(plugin, name=name)
        assert registered is not None
        _infos[registered] = PluginInfo(name=registered, problems=hook_problems(plugin))
        _generation += 1
    return registered


def unregister_plugin(plugin_or_name: Any) -> None:
    """Remove a plugin registered with :func:`register_plugin` (or any plugin, by name).

    ``plugin_or_name`` is the plugin object, or the name :func:`register_plugin` returned.
    """
    global _generation
    with _lock:
        manager = get_plugin_manager()
        name: str | None
        if isinstance(plugin_or_name, str):
            name = plugin_or_name
            manager.unregister(name=name)
        else:
            name = manager.get_name(plugin_or_name)
            manager.unregister(plugin_or_name)
        _infos.pop(name or "", None)
        _generation += 1


def plugin_infos() -> list[PluginInfo]:
    """Every plugin found, loaded or not, sorted by name."""
    get_plugin_manager()
    with _lock:
        return sorted(_infos.values(), key=lambda info: info.name)


def plugin_info(name: str) -> PluginInfo | None:
    get_plugin_manager()
    with _lock:
        return _infos.get(name)


def failed_plugins() -> list[PluginInfo]:
    """Plugins that could not be loaded (their models are missing)."""
    return [info for info in plugin_infos() if info.error]


def generation() -> int:
    get_plugin_manager()
    return _generation


def reset() -> None:
    """Forget every plugin and load the entry points again on next use (for tests)."""
    global _manager, _generation
    with _lock:
        _manager = None
        _infos.clear()
        _generation += 1
