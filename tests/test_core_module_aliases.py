"""Module paths plugins give their modules under ``bpcore.models`` (``register_module_aliases``).

The import hook resolves them from the registry's metadata and imports a plugin's module only
when its alias is imported; clashes are reported like other registry clashes.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from core_helpers import subprocess_env

import bpcore
import bpcore.models
from bpcore.plugins import registry as registry_module
from bpcore.plugins.manager import TIER_INSTALLED
from bpcore.plugins.registry import get_registry


class AliasPlugin:
    """Registers ``paths`` (each ``(path, target module)``)."""

    def __init__(self, *paths: tuple[str, str]) -> None:
        self.paths = paths

    @bpcore.hookimpl
    def register_module_aliases(self, register):
        for path, target in self.paths:
            register(path, target)


class BrokenAliasPlugin:
    @bpcore.hookimpl
    def register_module_aliases(self, register):
        raise RuntimeError("this plugin's alias hook is broken")


def _forget_aliases() -> None:
    """Alias modules stay imported like any module: drop them, so each test sees its own plugins."""
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if name.startswith("bpcore.models.") and str(getattr(spec, "origin", "")).startswith("alias of"):
            del sys.modules[name]
            parent, _, child = name.rpartition(".")
            if parent in sys.modules:
                vars(sys.modules[parent]).pop(child, None)


@pytest.fixture(autouse=True)
def forget_aliases() -> Iterator[None]:
    _forget_aliases()
    yield
    _forget_aliases()


@pytest.fixture
def family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh "plugin module" (never imported yet) holding a class, importable by its unique name."""
    name = f"alias_family_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            '''
            """A family's model module."""
            __all__ = ["FamilyModel"]

            class FamilyModel:
                pass

            def helper():
                return "helped"
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.fixture
def plugins() -> Iterator[object]:
    names: list[str] = []

    def register(plugin: object, name: str) -> str:
        names.append(bpcore.register_plugin(plugin, name=name))
        return names[-1]

    yield register
    for name in names:
        bpcore.unregister_plugin(name)


def test_an_alias_imports_the_plugin_module_only_when_imported(family, plugins):
    plugins(AliasPlugin(("family", family), ("family.model", family)), "family-plugin")
    assert "family" in dir(bpcore.models)
    assert family not in sys.modules  # registering and listing import nothing

    from bpcore.models.family.model import FamilyModel

    target = sys.modules[family]
    assert FamilyModel is target.FamilyModel
    alias = importlib.import_module("bpcore.models.family")
    assert alias.helper() == "helped" and alias.__doc__ == "A family's model module."
    assert alias.model.FamilyModel is FamilyModel  # the submodule path, as an attribute too
    namespace: dict[str, object] = {}
    exec("from bpcore.models.family import *", namespace)
    assert namespace["FamilyModel"] is FamilyModel
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        _ = alias.missing


def test_an_alias_is_reachable_as_an_attribute_without_an_import(family, plugins):
    plugins(AliasPlugin(("family", family)), "family-plugin")
    assert bpcore.models.family.FamilyModel is importlib.import_module(family).FamilyModel


def test_unknown_paths_are_no_modules(plugins, family):
    plugins(AliasPlugin(("family", family)), "family-plugin")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("bpcore.models.no_such_family")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("bpcore.models.family.no_such_module")


def test_a_clash_keeps_the_first_plugins_module_and_is_reported(family, plugins):
    plugins(AliasPlugin(("family", family)), "first-family")
    with pytest.warns(UserWarning, match="module path bpcore.models.family already means"):
        plugins(AliasPlugin(("family", "json")), "second-family")
    assert importlib.import_module("bpcore.models.family").FamilyModel is not None
    assert any("already means" in problem.message for problem in get_registry().clashes())


def test_a_clash_between_installed_plugins_is_ambiguous(family, plugins, monkeypatch):
    # Two third-party plugins of the same tier: neither wins (as for model names).
    monkeypatch.setattr(registry_module, "_tier_of_plugin", lambda name: TIER_INSTALLED)
    plugins(AliasPlugin(("family", family)), "first-family")
    with pytest.warns(UserWarning, match="ambiguous"):
        plugins(AliasPlugin(("family", "json")), "second-family")
    with pytest.raises(
        ImportError, match=f"ambiguous.*{family} \\(first-family\\), json \\(second-family\\)"
    ):
        importlib.import_module("bpcore.models.family")


@pytest.mark.parametrize(
    ("path", "target", "why"),
    [
        ("Family", "json", "is not a module path"),
        ("family..model", "json", "is not a module path"),
        ("family", "not a module", "is not a module name"),
        ("auto", "json", "is a module of bpcore itself"),
        ("generic_models", "json", "is a module of bpcore itself"),
    ],
)
def test_malformed_aliases_are_reported_and_ignored(plugins, path, target, why):
    plugins(AliasPlugin((path, target)), "sloppy")
    assert any(why in problem.message for problem in get_registry().problems if problem.plugin == "sloppy")
    assert not get_registry().module_alias(path)


def test_a_broken_alias_hook_is_reported_and_the_others_still_work(family, plugins):
    plugins(BrokenAliasPlugin(), "broken")
    plugins(AliasPlugin(("family", family)), "family-plugin")
    assert any("register_module_aliases failed" in problem.message for problem in get_registry().problems)
    assert importlib.import_module("bpcore.models.family").FamilyModel is not None


def test_a_target_that_fails_to_import_is_an_import_error_naming_the_plugin(plugins, tmp_path, monkeypatch):
    (tmp_path / "alias_broken_family.py").write_text("raise RuntimeError('broken on import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins(AliasPlugin(("broken_family", "alias_broken_family")), "broken-family")
    with pytest.raises(
        ImportError, match="alias_broken_family of the plugin 'broken-family'.*broken on import"
    ):
        importlib.import_module("bpcore.models.broken_family")
    assert bpcore.models.AutoModel.list_models() is not None  # listing is unaffected


def test_the_spec_modules_of_the_core():
    from bpcore.models.auto import AutoModel
    from bpcore.models.auto_model import AutoModel as SpecAutoModel
    from bpcore.models.base import BaseModel, PathModel
    from bpcore.models.generic_models import BaseModel as SpecBaseModel
    from bpcore.models.generic_models import PathModel as SpecPathModel

    assert (SpecAutoModel, SpecBaseModel, SpecPathModel) == (AutoModel, BaseModel, PathModel)


def test_generic_models_falls_back_to_the_classes_plugins_export(tiny_plugin):
    from tiny_models import TinyTextModel

    import bpcore.models.generic_models as generic_models

    assert generic_models.TinyTextModel is TinyTextModel
    assert "TinyTextModel" in dir(generic_models)
    with pytest.raises(AttributeError, match="is the plugin exporting it installed"):
        _ = generic_models.HFNoSuchModel


LISTING = """
import json, sys
import bpcore, bpcore.models
from bpcore.models import AutoModel
from bpcore.plugins.registry import get_registry
rows = AutoModel.list_models()
aliases = sorted(get_registry().module_aliases)
heavy = ["torch", "transformers", "open_clip", "timm", "sentence_transformers", "bp_clip.model", "bp_hf.nli"]
before = [name for name in heavy if name in sys.modules]
from bpcore.models.clip import CLIP
print(json.dumps({"rows": len(rows), "aliases": aliases, "before": before,
                  "after": "bp_clip.model" in sys.modules, "same": CLIP is sys.modules["bp_clip.model"].CLIP}))
"""


def test_listing_stays_torch_free_and_an_installed_alias_imports_its_module_when_imported():
    result = subprocess.run(
        [sys.executable, "-c", LISTING], env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["rows"] > 0 and "clip" in outcome["aliases"] and "hf_nli_model.model" in outcome["aliases"]
    assert outcome["before"] == []
    assert outcome["after"] and outcome["same"]
