"""Finding plugins: the ``bpcore`` entry-point group, plus plugins registered at run time.

Each entry point is loaded on its own, so a plugin that fails to import is recorded and
reported by ``bpcore plugins`` instead of breaking every other plugin.
Set ``BPCORE_LOAD_PLUGINS`` to a comma-separated list of entry-point names to load only those
(an empty value loads none).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import attrs
import importlib_metadata
import pluggy

from bpcore import hookspecs

ENTRY_POINT_GROUP = "bpcore"

hookimpl = pluggy.HookimplMarker("bpcore")


@attrs.frozen
class PluginInfo:
    """What ``bpcore plugins`` reports about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None


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


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    allowed = _allowed_entry_points()
    entry_points = sorted(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
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
        )
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=entry_point.name)
        except Exception as error:  # a broken plugin is reported, never fatal
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


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object (a module or class with ``@hookimpl`` functions) at run time.

    Example::

        class MyPlugin:
            @bpcore.hookimpl
            def register_models(self, register):
                register(name="my-model", factory="my_pkg:MyModel", tasks=["emotion"])

        bpcore.register_plugin(MyPlugin())
    """
    global _generation
    with _lock:
        manager = get_plugin_manager()
        registered = manager.register(plugin, name=name)
        assert registered is not None
        _infos[registered] = PluginInfo(name=registered)
        _generation += 1
        return registered


def unregister_plugin(plugin_or_name: Any) -> None:
    """Remove a plugin registered with :func:`register_plugin` (or any plugin, by name)."""
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
