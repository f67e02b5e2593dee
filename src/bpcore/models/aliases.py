"""Module paths plugins give their modules under ``bpcore.models`` (the ``register_module_aliases`` hook).

Code written for Backprop imports its model modules by path, e.g.
``from backprop.models.hf_nli_model.model import HFNLIModel``. The core names no model
family, so each plugin declares the paths of its modules, and :class:`AliasFinder`, an import
hook at the end of ``sys.meta_path``, serves them::

    from bpcore.models.clip import CLIP        # bp-clip registers "clip" -> "bp_clip.model"
    CLIP is bp_clip.model.CLIP                 # True: the plugin's own class

Only names under ``bpcore.models.`` that no file of bpcore provides reach the hook (bpcore's
own modules are found first). The hook reads the registry, which is plain metadata, and
imports the plugin's module only when the alias itself is imported. An alias module is a
package (so ``clip.model`` can live under ``clip``) whose attributes are the target module's.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

PREFIX = "bpcore.models."


class AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``bpcore.models.<path>`` for the paths plugins register; None for everything else."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PREFIX):
            return None
        from bpcore.plugins import registry

        if registry.building_here():  # a plugin importing while it loads: the registry is not ready
            return None
        claims = registry.get_registry().module_alias(fullname[len(PREFIX) :])
        if not claims:
            return None
        if len(claims) > 1:
            owners = ", ".join(f"{claim.target} ({claim.plugin})" for claim in claims)
            raise ImportError(
                f"{fullname} is ambiguous: the plugins claiming it are all installed; import their own "
                f"modules instead: {owners}",
                name=fullname,
            )
        claim = claims[0]
        return importlib.machinery.ModuleSpec(
            fullname,
            AliasLoader(claim.target, claim.plugin),
            origin=f"alias of {claim.target}",
            is_package=True,
        )


class AliasLoader(importlib.abc.Loader):
    """Imports the target module and makes the alias module show its attributes."""

    def __init__(self, target: str, plugin: str) -> None:
        self.target = target
        self.plugin = plugin

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module, filled in by exec_module

    def exec_module(self, module: types.ModuleType) -> None:
        try:
            target = importlib.import_module(self.target)
        except Exception as error:
            raise ImportError(
                f"{module.__name__} is {self.target} of the plugin {self.plugin!r}, which cannot be imported "
                f"({type(error).__name__}: {error}); reinstall or fix the plugin",
                name=module.__name__,
            ) from error
        _mirror(module, target)


def _mirror(module: types.ModuleType, target: types.ModuleType) -> None:
    """Make ``module`` answer every attribute with ``target``'s (a PEP 562 ``__getattr__``).

    A proxy rather than ``target`` itself: the alias must be a package for its submodule paths,
    and ``target``'s own ``__spec__`` and ``__name__`` stay untouched.
    """

    def __getattr__(name: str) -> Any:
        child = f"{module.__name__}.{name}"
        if _is_alias(child):  # as in Backprop, whose packages imported their submodules
            return importlib.import_module(child)
        try:
            return getattr(target, name)
        except AttributeError:
            raise AttributeError(
                f"module {module.__name__!r} (that is {target.__name__}) has no attribute {name!r}"
            ) from None

    def __dir__() -> list[str]:
        return sorted(set(dir(target)) | set(vars(module)))

    public = getattr(target, "__all__", None) or [
        name for name, value in vars(target).items() if not name.startswith("_") and not _is_module(value)
    ]
    vars(module).update(
        __doc__=target.__doc__,
        __getattr__=__getattr__,
        __dir__=__dir__,
        # ``from alias import *`` reads the proxy's own namespace: give it the target's public names.
        __all__=list(public),
        __wrapped__=target,
    )


def _is_alias(fullname: str) -> bool:
    from bpcore.plugins.registry import get_registry

    return bool(get_registry().module_alias(fullname[len(PREFIX) :]))


def _is_module(value: Any) -> bool:
    return isinstance(value, types.ModuleType)


def install() -> None:
    """Put the finder at the end of ``sys.meta_path`` once (bpcore's own modules are always found first)."""
    if not any(isinstance(finder, AliasFinder) for finder in sys.meta_path):
        sys.meta_path.append(AliasFinder())


def top_level_aliases() -> list[str]:
    """The first parts of the registered paths (``"clip"`` for ``"clip.model"``)."""
    from bpcore.plugins.registry import get_registry

    return sorted({path.split(".")[0] for path in get_registry().module_aliases})
