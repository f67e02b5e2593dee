"""bpcore.plugins is the one module plugins import, and a model class is declared once (as its factory)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bpcore
import bpcore.models
import bpcore.plugins
from bpcore.plugins.registry import get_registry

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = sorted([*ROOT.glob("plugins/*/src/**/*.py"), *ROOT.glob("examples/bp-trigram/src/**/*.py")])
PUBLIC = {"bpcore", "bpcore.plugins"}


def _bpcore_imports(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
    return [module for module in modules if module.split(".")[0] == "bpcore"]


def test_the_plugin_sources_are_found():
    # Guards the parametrisation below from silently testing nothing.
    assert len(PLUGIN_SOURCES) > 20
    assert {path.relative_to(ROOT).parts[1] for path in PLUGIN_SOURCES} >= {
        "bp_hf",
        "bp_clip",
        "bp_effnet",
        "bp_st",
    }


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_plugins_import_only_the_public_plugin_api(path):
    private = [module for module in _bpcore_imports(path) if module not in PUBLIC]
    assert not private, f"{path.name} imports {private}; import them from bpcore.plugins"


def test_every_public_name_resolves():
    for name in bpcore.plugins.__all__:
        assert getattr(bpcore.plugins, name) is not None, name
    assert bpcore.plugins.hookimpl is bpcore.hookimpl
    with pytest.raises(AttributeError, match="no attribute"):
        _ = bpcore.plugins.NoSuchName


def test_importing_the_plugin_api_imports_no_torch():
    script = textwrap.dedent(
        """
        import sys
        from bpcore.plugins import RegisterModel, SavedFolder, hookimpl, TEXT_VECTORISATION
        heavy = sorted(name for name in ("torch", "accelerate", "PIL", "safetensors") if name in sys.modules)
        print("HEAVY", heavy)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout


class OnlyModels:
    """A plugin that declares its models and nothing else: no register_model_classes."""

    @bpcore.hookimpl
    def register_models(self, register):
        register(name="declared-once", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"])
        register(name="built-by-function", factory="tiny_models:trigram_ids", tasks=["emotion"])


@pytest.fixture
def only_models():
    name = bpcore.register_plugin(OnlyModels(), name="only-models")
    try:
        yield name
    finally:
        bpcore.unregister_plugin(name)


def test_a_factory_class_is_exported_without_a_second_declaration(only_models):
    from tiny_models import TinyTextModel

    assert get_registry().classes["TinyTextModel"] == "tiny_models:TinyTextModel"
    assert bpcore.models.TinyTextModel is TinyTextModel
    # A factory function is no class to export.
    assert "trigram_ids" not in get_registry().classes


def test_a_model_class_lists_the_models_it_builds(only_models):
    from tiny_models import TinyTextModel

    assert [row["name"] for row in TinyTextModel.list_models()] == ["declared-once"]
    assert bpcore.models.BaseModel.list_models() == []  # no bpcore-package factory


def test_lazy_exports_import_a_class_on_first_access_only():
    getattr_, dir_ = bpcore.plugins.lazy_exports("bpcore.plugins", {"Counter": "collections"})
    import collections

    assert getattr_("Counter") is collections.Counter
    assert "Counter" in dir_() and "hookimpl" in dir_()
    with pytest.raises(AttributeError, match="'bpcore.plugins' has no attribute 'Missing'"):
        getattr_("Missing")


def test_a_model_called_for_a_task_it_does_not_serve_says_which_it_serves():
    from tiny_models import VocabModel

    model = VocabModel.__new__(VocabModel)
    bpcore.plugins.BaseModel.__init__(model, name="vocab-model", tasks=["text-vectorisation"])
    model.check_task("text-vectorisation")
    with pytest.raises(
        bpcore.TaskNotSupportedError, match=r"'vocab-model' supports \['text-vectorisation'\], not 'qa'"
    ):
        model.check_task("qa")


def test_the_fresh_process_checks_see_imports_and_errors(monkeypatch):
    from bpcore.testing.fresh_process import imported_by_listing, load_errors_offline

    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", "trigram")  # the example plugin's entry point

    assert imported_by_listing("bp_trigram", ["torch", "json"]) == ["json"]
    [error] = load_errors_offline(['bpcore.models.AutoModel.from_pretrained("no-such-model")'])
    assert error.startswith("ModelNotFoundError") and "no-such-model" in error
