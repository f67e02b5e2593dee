"""Plugin mistakes and clashes: reported clearly, and never changing what an existing name loads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from core_helpers import subprocess_env

import bpcore
from bpcore.models import AutoModel
from bpcore.plugins.manager import plugin_infos
from bpcore.plugins.registry import get_registry


def fake_distribution(
    site: Path, distribution: str, entry_points: dict[str, str], modules: dict[str, str]
) -> Path:
    """A distribution on ``site`` (for PYTHONPATH) with ``bpcore`` entry points and their modules."""
    dist_info = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[bpcore]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


def run_python(code: str, site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=subprocess_env([site], **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


SQUATTER = """
    import bpcore

    @bpcore.hookimpl
    def register_models(register):
        register(name="all-minilm-l6-v2", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"],
                 default_for=["text-vectorisation"], aliases={"english-small": ["text-vectorisation"]},
                 description="a squatter")
"""


def test_a_third_party_plugin_cannot_take_a_first_party_name_alias_or_default(tmp_path):
    # The entry point sorts first ("aaa"), as in the report: bp-st's model must keep its name.
    site = fake_distribution(
        tmp_path / "site", "squatter", {"aaa": "squatter_plugin"}, {"squatter_plugin": SQUATTER}
    )
    code = """
        import json
        from bpcore.plugins.registry import get_registry
        from bpcore.models import AutoModel
        registry = get_registry()
        print(json.dumps({
            "name": registry.resolve("all-minilm-l6-v2").plugin,
            "alias": registry.resolve("english-small", task="text-vectorisation").plugin,
            "default": registry.default_for("text-vectorisation").plugin,
            "qualified": registry.resolve("aaa/all-minilm-l6-v2").description,
            "listed": sorted(row["name"] for row in AutoModel.list_models(task="text-vectorisation")),
            "problems": {p.plugin: p.message for p in registry.problems},
        }))
    """
    result = run_python(code, site, BPCORE_LOAD_PLUGINS="aaa,st")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["name"] == seen["alias"] == seen["default"] == "st"
    assert seen["qualified"] == "a squatter"
    assert "aaa/all-minilm-l6-v2" in seen["listed"] and "all-minilm-l6-v2" in seen["listed"]
    assert list(seen["problems"]) == ["aaa"], "the clash is the newcomer's problem, not bp-st's"
    assert "st/all-minilm-l6-v2" in seen["problems"]["aaa"]

    listed = subprocess.run(
        [sys.executable, "-m", "bpcore.cli", "list-models"],
        env=subprocess_env([site], BPCORE_LOAD_PLUGINS="aaa,st"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0
    assert "name clash" in listed.stderr
    assert "aaa/all-minilm-l6-v2" in listed.stdout


def test_two_third_party_plugins_with_one_name_make_it_ambiguous_not_silently_replaced(tmp_path):
    source = """
        import bpcore

        @bpcore.hookimpl
        def register_models(register):
            register(name="shared-name", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"],
                     default_for=["text-vectorisation"], description="{who}")
    """
    site = tmp_path / "site"
    fake_distribution(
        site, "first-vendor", {"first": "first_plugin"}, {"first_plugin": source.format(who="first")}
    )
    fake_distribution(
        site, "second-vendor", {"second": "second_plugin"}, {"second_plugin": source.format(who="second")}
    )
    code = """
        import bpcore
        from bpcore.plugins.registry import get_registry
        registry = get_registry()
        print(registry.resolve("first/shared-name").description, registry.resolve("second/shared-name").description)
        for attempt in (lambda: bpcore.TextVectorisation("shared-name"), lambda: bpcore.TextVectorisation()):
            try:
                attempt()
            except bpcore.ModelNotFoundError as error:
                print("ERROR", error)
    """
    result = run_python(code, site, BPCORE_LOAD_PLUGINS="first,second")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "first second"
    assert len(lines) == 3 and all("ambiguous" in line and "first/shared-name" in line for line in lines[1:])

    chosen = run_python(
        "import bpcore; print(bpcore.TextVectorisation().model.name)",
        site,
        BPCORE_LOAD_PLUGINS="first,second",
        BPCORE_DEFAULTS="text-vectorisation=second/shared-name",
    )
    assert chosen.stdout.strip() == "shared-name", chosen.stderr


def test_bpcore_defaults_picks_a_tasks_default(tiny_plugin, monkeypatch):
    monkeypatch.setenv("BPCORE_DEFAULTS", "text-vectorisation=tiny-text-wide")
    assert bpcore.TextVectorisation().model.dim == 32
    monkeypatch.setenv("BPCORE_DEFAULTS", "text-vectorisation=no-such-model")
    with pytest.raises(bpcore.ModelNotFoundError, match="BPCORE_DEFAULTS"):
        bpcore.TextVectorisation()
    monkeypatch.setenv("BPCORE_DEFAULTS", "telepathy=tiny-text")
    with pytest.raises(bpcore.InputError, match="BPCORE_DEFAULTS"):
        bpcore.TextVectorisation()


def test_misspelled_and_unmarked_hooks_are_reported():
    class Misspelled:
        @bpcore.hookimpl
        def register_model(self, register):  # one letter short
            register(name="never-seen", factory="tiny_models:TinyTextModel", tasks=["emotion"])

    class Unmarked:
        def register_models(self, register):  # no @bpcore.hookimpl
            register(name="never-seen-either", factory="tiny_models:TinyTextModel", tasks=["emotion"])

    names = [
        bpcore.register_plugin(Misspelled(), "misspelled"),
        bpcore.register_plugin(Unmarked(), "unmarked"),
    ]
    try:
        problems = {info.name: info.problems for info in plugin_infos()}
        assert "did you mean register_models?" in problems["misspelled"][0]
        assert "not marked @bpcore.hookimpl" in problems["unmarked"][0]
        rows = {row["name"]: row for row in json.loads(_cli_json(["plugins", "--json"]))}
        assert rows["misspelled"]["problems"] and rows["unmarked"]["problems"]
    finally:
        for name in names:
            bpcore.unregister_plugin(name)


def _cli_json(args: list[str]) -> str:
    import contextlib
    import io

    from bpcore.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


def test_any_factory_failure_is_a_model_load_error_naming_model_plugin_and_cause(tmp_path, monkeypatch):
    (tmp_path / "syntax_broken_factory.py").write_text("def broken(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    class Factories:
        @bpcore.hookimpl
        def register_models(self, register):
            register(name="syntax-broken", factory="syntax_broken_factory:Model", tasks=["emotion"])
            register(
                name="wrong-kwargs",
                factory="tiny_models:TinyTextModel",
                tasks=["text-vectorisation"],
                init_kwargs={"no_such_argument": 1},
            )

    name = bpcore.register_plugin(Factories(), "factories")
    try:
        with pytest.raises(
            bpcore.ModelLoadError, match=r"'syntax-broken' of plugin 'factories'.*SyntaxError"
        ):
            bpcore.Emotion("syntax-broken")
        with pytest.raises(
            bpcore.ModelLoadError, match=r"'wrong-kwargs' of plugin 'factories'.*no_such_argument"
        ):
            AutoModel.from_pretrained("wrong-kwargs")
    finally:
        bpcore.unregister_plugin(name)


def test_not_found_mentions_plugins_that_failed_to_load(tmp_path):
    site = fake_distribution(
        tmp_path / "site",
        "half-broken",
        {"broken": "broken_mod"},
        {"broken_mod": "raise ImportError('no family lib')"},
    )
    code = """
        import bpcore
        try:
            bpcore.TextVectorisation("some-model")
        except bpcore.ModelNotFoundError as error:
            print(error)
    """
    result = run_python(code, site, BPCORE_LOAD_PLUGINS="broken")
    assert "failed to load" in result.stdout and "no family lib" in result.stdout, (
        result.stdout + result.stderr
    )


def test_install_hints_name_only_distributions_that_are_not_installed():
    # Every family distribution is installed in the test environment, but no plugin is loaded.
    with pytest.raises(bpcore.PluginNotInstalledError) as caught:
        bpcore.Emotion()
    message = str(caught.value)
    assert "pip install" not in message
    assert "bp-hf is installed but register" in message and "BPCORE_LOAD_PLUGINS" in message


def test_a_plugin_that_exits_on_import_is_reported_and_the_listing_survives(tmp_path):
    site = fake_distribution(
        tmp_path / "site",
        "exiting",
        {"exiting": "exiting_mod", "good": "good_mod"},
        {
            "exiting_mod": "import sys\nsys.exit(3)\n",
            "good_mod": """
                import bpcore
                @bpcore.hookimpl
                def register_models(register):
                    register(name="still-here", factory="tiny_models:TinyTextModel", tasks=["emotion"])
            """,
        },
    )
    for command in (["list-models"], ["plugins"]):
        result = subprocess.run(
            [sys.executable, "-m", "bpcore.cli", *command],
            env=subprocess_env([site], BPCORE_LOAD_PLUGINS="exiting,good"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert (
            ("still-here" in result.stdout) if command == ["list-models"] else ("SystemExit" in result.stdout)
        )


def test_bpcore_models_is_reachable_after_import_bpcore_without_torch(tmp_path):
    code = """
        import sys
        import bpcore
        print(bpcore.models.AutoModel.__name__, "torch" in sys.modules)
    """
    result = run_python(code, tmp_path)
    assert result.stdout.split() == ["AutoModel", "False"], result.stderr
    assert get_registry() is not None
