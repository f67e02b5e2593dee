"""The registry and plugins: run-time plugins, AutoModel, defaults, aliases, problems, entry points."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from core_helpers import TEST_PLUGIN_NAME, TinyPlugin, subprocess_env
from tiny_models import TinyImageModel, TinyTextModel, TinyTextToTextModel

import bpcore
from bpcore.models import AutoModel
from bpcore.plugins.registry import get_registry


def register_temporarily(plugin: object, name: str) -> str:
    return bpcore.register_plugin(plugin, name=name)


class ProblemPlugin:
    """A plugin with one good model, several malformed ones and a broken class export."""

    @bpcore.hookimpl
    def register_models(self, register):
        register(name="good-model", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"])
        register(name="Bad Name", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"])
        register(name="no-factory-colon", factory="tiny_models.TinyTextModel", tasks=["text-vectorisation"])
        register(name="unknown-task", factory="tiny_models:TinyTextModel", tasks=["telepathy"])
        register(
            name="default-outside-tasks",
            factory="tiny_models:TinyTextModel",
            tasks=["text-vectorisation"],
            default_for=["emotion"],
        )
        register(
            name="alias-outside-tasks",
            factory="tiny_models:TinyTextModel",
            tasks=["text-vectorisation"],
            aliases={"some-alias": ["qa"]},
        )
        register(name="missing-tasks", factory="tiny_models:TinyTextModel")

    @bpcore.hookimpl
    def register_model_classes(self, register):
        register("not an identifier", "tiny_models:TinyTextModel")


class RaisingPlugin:
    @bpcore.hookimpl
    def register_models(self, register):
        raise RuntimeError("this plugin's hook is broken")


def problem_messages(plugin: str) -> list[str]:
    return [problem.message for problem in get_registry().problems if problem.plugin == plugin]


# -- listing ------------------------------------------------------------------------------------


def test_run_time_plugin_models_are_listed_with_their_spec(tiny_plugin):
    rows = AutoModel.list_models()
    names = [row["name"] for row in rows]
    assert names == sorted(names)
    assert {"tiny-text", "tiny-text-wide", "tiny-image", "tiny-t2t"} <= set(names)
    tiny = next(row for row in rows if row["name"] == "tiny-text")
    assert tiny["tasks"] == ["text-vectorisation", "text-classification"]
    assert tiny["finetunable"] == ["text-vectorisation", "text-classification"]
    assert tiny["default_for"] == ["text-vectorisation", "text-classification"]
    assert tiny["description"] == "trigram embedding bag"
    assert tiny["details"] == {"family": "tiny"}
    assert tiny["plugin"] == TEST_PLUGIN_NAME
    assert set(tiny["aliases"]) == {"tiny-base", "english-tiny"}
    json.dumps(rows)  # listing is JSON-ready


def test_list_models_filters_by_task_limit_and_pattern(tiny_plugin):
    assert [row["name"] for row in AutoModel.list_models(task="image-vectorisation")] == ["tiny-image"]
    assert [row["name"] for row in AutoModel.list_models(task="text-classification")] == [
        "tiny-text",
        "tiny-text-wide",
    ]
    assert len(AutoModel.list_models(limit=2)) == 2
    assert [row["name"] for row in AutoModel.list_models(pattern="tiny-text*")] == [
        "tiny-text",
        "tiny-text-wide",
    ]
    assert AutoModel.list_models(pattern="nothing-like-this*") == []
    # Aliases shown for a task are the ones that mean this model for that task.
    emotion_rows = AutoModel.list_models(task="emotion")
    assert emotion_rows[0]["name"] == "tiny-t2t" and emotion_rows[0]["aliases"] == ["english-tiny"]
    assert AutoModel.list_models(task="qa")[0]["aliases"] == []


def test_list_models_return_dict_and_display(tiny_plugin, capsys):
    by_name = AutoModel.list_models(task="text-vectorisation", return_dict=True)
    assert set(by_name) == {"tiny-text", "tiny-text-wide"}
    assert by_name["tiny-text"]["description"] == "trigram embedding bag"
    assert "name" not in by_name["tiny-text"]

    assert AutoModel.list_models(display=True, limit=1, task="image-classification") is None
    printed = capsys.readouterr().out
    assert "tiny-image" in printed and "tiny convolutional net" in printed
    assert "tiny-text" not in printed


def test_task_list_models_lists_only_that_task(tiny_plugin):
    assert [row["name"] for row in bpcore.Emotion.list_models()] == ["tiny-t2t"]
    assert set(bpcore.TextVectorisation.list_models(return_dict=True)) == {"tiny-text", "tiny-text-wide"}
    assert len(bpcore.TextClassification.list_models(limit=1)) == 1


def test_list_models_with_unknown_task_is_an_input_error(tiny_plugin):
    with pytest.raises(bpcore.InputError, match="telepathy"):
        AutoModel.list_models(task="telepathy")


# -- loading ------------------------------------------------------------------------------------


def test_from_pretrained_builds_the_model_with_its_spec(tiny_plugin):
    model = AutoModel.from_pretrained("tiny-text-wide", device="cpu")
    assert isinstance(model, TinyTextModel)
    assert model.dim == 32  # init_kwargs reach the factory
    assert model.name == "tiny-text-wide"
    assert model.description == "a wider trigram embedding bag"
    assert model.tasks == ["text-vectorisation", "text-classification"]
    assert len(model({"text": ["hello"]}, task="text-vectorisation")[0]) == 32


def test_from_pretrained_by_alias(tiny_plugin):
    model = AutoModel.from_pretrained("tiny-base")
    assert isinstance(model, TinyTextModel) and model.name == "tiny-text"


def test_from_pretrained_with_caller_aliases(tiny_plugin):
    model = AutoModel.from_pretrained("my-favourite", aliases={"my-favourite": "tiny-image"})
    assert isinstance(model, TinyImageModel)


def test_alias_that_means_different_models_per_task(tiny_plugin):
    assert isinstance(bpcore.TextVectorisation("english-tiny").model, TinyTextModel)
    assert isinstance(bpcore.Emotion("english-tiny").model, TinyTextToTextModel)
    assert isinstance(bpcore.Summarisation("english-tiny").model, TinyTextToTextModel)
    # The alias only stands for the tasks it was declared for.
    with pytest.raises(bpcore.ModelNotFoundError):
        bpcore.QA("english-tiny")
    # Without a task it is ambiguous, and the error says so.
    with pytest.raises(bpcore.ModelNotFoundError, match="task"):
        AutoModel.from_pretrained("english-tiny")


def test_tasks_use_the_declared_default(tiny_plugin):
    assert isinstance(bpcore.TextVectorisation().model, TinyTextModel)
    assert bpcore.TextVectorisation().model.name == "tiny-text"
    assert bpcore.TextClassification().model.name == "tiny-text"
    assert isinstance(bpcore.ImageVectorisation().model, TinyImageModel)
    assert isinstance(bpcore.QA().model, TinyTextToTextModel)


def test_task_without_declared_default_takes_a_model_that_supports_it():
    class OnlyModel:
        @bpcore.hookimpl
        def register_models(self, register):
            register(name="only-model", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"])

    name = register_temporarily(OnlyModel(), "only-model-plugin")
    try:
        assert bpcore.TextVectorisation().model.name == "only-model"
    finally:
        bpcore.unregister_plugin(name)


def test_task_by_name_or_model_object(tiny_plugin):
    assert bpcore.TextVectorisation("tiny-text-wide").model.dim == 32
    model = TinyTextModel(dim=4)
    task = bpcore.TextVectorisation(model)
    assert task.model is model
    assert len(task("some text")) == 4


def test_unknown_model_name_suggests_close_names(tiny_plugin):
    with pytest.raises(bpcore.ModelNotFoundError, match="tiny-text") as error:
        AutoModel.from_pretrained("tiny-txet")
    assert "did you mean" in str(error.value)
    with pytest.raises(bpcore.ModelNotFoundError, match="tiny-text"):
        bpcore.TextVectorisation("tiny-txt")
    assert issubclass(bpcore.ModelNotFoundError, LookupError)


def test_task_with_no_installed_model_names_the_distribution():
    with pytest.raises(bpcore.PluginNotInstalledError, match="bp-st"):
        bpcore.TextVectorisation()
    with pytest.raises(bpcore.PluginNotInstalledError, match="bp-hf"):
        bpcore.Emotion()
    with pytest.raises(bpcore.PluginNotInstalledError, match="bp-clip"):
        bpcore.ImageTextVectorisation()


def test_model_that_lacks_the_task(tiny_plugin):
    with pytest.raises(bpcore.TaskNotSupportedError, match="tiny-text"):
        bpcore.Emotion("tiny-text")
    with pytest.raises(bpcore.TaskNotSupportedError):
        AutoModel.from_pretrained("tiny-image", task="text-vectorisation")
    with pytest.raises(bpcore.TaskNotSupportedError):
        bpcore.TextVectorisation(TinyImageModel())


def test_factory_that_cannot_be_imported_is_a_bpcore_error():
    class BrokenFactories:
        @bpcore.hookimpl
        def register_models(self, register):
            register(name="missing-attr", factory="tiny_models:NoSuchModel", tasks=["text-vectorisation"])
            register(name="missing-module", factory="no_such_family_library:Model", tasks=["emotion"])

    name = register_temporarily(BrokenFactories(), "broken-factories")
    try:
        # Listing still works: factories are only imported on first use.
        assert {row["name"] for row in AutoModel.list_models()} == {"missing-attr", "missing-module"}
        with pytest.raises(bpcore.BpcoreError, match="NoSuchModel"):
            AutoModel.from_pretrained("missing-attr")
        with pytest.raises(bpcore.BpcoreError, match="no_such_family_library"):
            bpcore.Emotion("missing-module")
    finally:
        bpcore.unregister_plugin(name)


def test_declared_finetunable_tasks_are_honoured(tiny_plugin):
    # tiny-text-wide is declared finetunable for text-vectorisation only.
    tc = bpcore.TextClassification("tiny-text-wide")
    with pytest.raises(bpcore.TaskNotSupportedError, match="tiny-text"):
        tc.finetune(
            {"texts": ["a political text", "a science text"], "labels": ["politics", "science"]}, epochs=1
        )


# -- problems -----------------------------------------------------------------------------------


def test_malformed_specs_are_reported_and_good_models_still_list():
    name = register_temporarily(ProblemPlugin(), "problem-plugin")
    try:
        assert [row["name"] for row in AutoModel.list_models()] == ["good-model"]
        messages = problem_messages("problem-plugin")
        for label in (
            "Bad Name",
            "no-factory-colon",
            "unknown-task",
            "default-outside-tasks",
            "alias-outside-tasks",
            "missing-tasks",
            "not an identifier",
        ):
            assert any(label in message for message in messages), (label, messages)
        assert isinstance(AutoModel.from_pretrained("good-model"), TinyTextModel)
    finally:
        bpcore.unregister_plugin(name)


def test_a_raising_hook_is_reported_and_others_keep_working(tiny_plugin):
    name = register_temporarily(RaisingPlugin(), "raising-plugin")
    try:
        messages = problem_messages("raising-plugin")
        assert len(messages) == 1 and "this plugin's hook is broken" in messages[0]
        assert "tiny-text" in {row["name"] for row in AutoModel.list_models()}
        assert isinstance(bpcore.TextVectorisation().model, TinyTextModel)
    finally:
        bpcore.unregister_plugin(name)


def test_duplicate_model_names_first_registered_wins_and_clash_is_reported(tiny_plugin):
    class Impostor:
        @bpcore.hookimpl
        def register_models(self, register):
            register(
                name="tiny-text",
                factory="tiny_models:TinyImageModel",
                tasks=["image-vectorisation"],
                description="an impostor",
                aliases={"tiny-base": ["image-vectorisation"]},
            )
            register(name="impostor-own", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"])

    name = register_temporarily(Impostor(), "impostor")
    try:
        rows = AutoModel.list_models(return_dict=True)
        assert rows["tiny-text"]["description"] == "trigram embedding bag"
        assert rows["tiny-text"]["plugin"] == TEST_PLUGIN_NAME
        assert "impostor-own" in rows  # the clash does not drop the plugin's other models
        messages = problem_messages("impostor")
        assert any("tiny-text" in message and TEST_PLUGIN_NAME in message for message in messages), messages
        assert isinstance(AutoModel.from_pretrained("tiny-text"), TinyTextModel)
    finally:
        bpcore.unregister_plugin(name)


def test_alias_clash_is_reported_and_first_meaning_kept(tiny_plugin):
    class AliasThief:
        @bpcore.hookimpl
        def register_models(self, register):
            register(
                name="alias-thief",
                factory="tiny_models:TinyTextModel",
                tasks=["text-vectorisation"],
                aliases={"tiny-base": ["text-vectorisation"]},
            )

    name = register_temporarily(AliasThief(), "alias-thief-plugin")
    try:
        assert bpcore.TextVectorisation("tiny-base").model.name == "tiny-text"
        assert any("tiny-base" in message for message in problem_messages("alias-thief-plugin"))
    finally:
        bpcore.unregister_plugin(name)


def test_unregistering_removes_the_models():
    name = bpcore.register_plugin(TinyPlugin(), name="short-lived")
    assert AutoModel.list_models(task="qa")
    bpcore.unregister_plugin(name)
    assert AutoModel.list_models() == []
    with pytest.raises(bpcore.ModelNotFoundError):
        AutoModel.from_pretrained("tiny-text")


def test_exported_model_classes(tiny_plugin):
    import bpcore.models

    assert bpcore.models.TinyTextModel is TinyTextModel
    assert bpcore.models.TinyImageModel is TinyImageModel
    assert "TinyTextModel" in dir(bpcore.models)
    with pytest.raises(AttributeError, match="plugin"):
        _ = bpcore.models.NoSuchModelClass


def test_base_models_are_importable():
    from bpcore.models import BaseModel, PathModel

    assert issubclass(PathModel, BaseModel)
    assert issubclass(TinyTextModel, BaseModel)


# -- entry points, in a fresh interpreter ------------------------------------------------------


def write_fake_distribution(root: Path) -> Path:
    """A folder for PYTHONPATH with a distribution whose entry points are one broken and one good plugin."""
    dist_info = root / "fake_broken-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-broken\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[bpcore]\nbroken = broken_plugin_mod\ngood = good_plugin_mod\n"
    )
    (root / "broken_plugin_mod.py").write_text('raise ImportError("the family library is missing: sorry")\n')
    (root / "good_plugin_mod.py").write_text(
        textwrap.dedent(
            """
            import bpcore

            @bpcore.hookimpl
            def register_models(register):
                register(name="fake-good-model", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"],
                         default_for=["text-vectorisation"])
            """
        )
    )
    return root


def run_bpcore(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bpcore.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def fake_distribution(tmp_path: Path) -> Path:
    return write_fake_distribution(tmp_path / "site")


def test_broken_entry_point_is_reported_and_listing_still_works(fake_distribution):
    env = subprocess_env([fake_distribution])
    shown = run_bpcore(["plugins", "--json"], env)
    assert shown.returncode == 0, shown.stderr
    rows = {row["name"]: row for row in json.loads(shown.stdout)}
    assert "the family library is missing: sorry" in rows["broken"]["error"]
    assert rows["broken"]["distribution"] == "fake-broken"
    assert rows["good"]["error"] is None and rows["good"]["models"] == 1

    text = run_bpcore(["plugins"], env)
    assert text.returncode == 0
    assert "broken" in text.stdout and "the family library is missing" in text.stdout

    listed = run_bpcore(["list-models", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert "fake-good-model" in [row["name"] for row in json.loads(listed.stdout)]


def test_bpcore_load_plugins_limits_loading(fake_distribution):
    only_good = run_bpcore(
        ["plugins", "--json"], subprocess_env([fake_distribution], BPCORE_LOAD_PLUGINS="good")
    )
    names = [row["name"] for row in json.loads(only_good.stdout)]
    assert "good" in names and "broken" not in names

    none = run_bpcore(["list-models", "--json"], subprocess_env([fake_distribution], BPCORE_LOAD_PLUGINS=""))
    assert none.returncode == 0 and json.loads(none.stdout) == []

    only_broken = run_bpcore(
        ["list-models", "--json"], subprocess_env([fake_distribution], BPCORE_LOAD_PLUGINS="broken")
    )
    assert only_broken.returncode == 0 and json.loads(only_broken.stdout) == []


def test_entry_point_plugin_models_are_usable(fake_distribution):
    script = "import bpcore; tv = bpcore.TextVectorisation(); print(tv.model.name, len(tv('hello')))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=subprocess_env([fake_distribution], BPCORE_LOAD_PLUGINS="good,broken"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fake-good-model", "16"]


def test_listing_models_imports_no_torch(fake_distribution):
    script = textwrap.dedent(
        """
        import sys
        import bpcore
        from bpcore.models import AutoModel
        from bpcore.cli import main

        class Plugin:
            @bpcore.hookimpl
            def register_models(self, register):
                register(name="run-time-model", factory="tiny_models:TinyTextModel", tasks=["emotion"])

        bpcore.register_plugin(Plugin())
        names = [row["name"] for row in AutoModel.list_models()]
        assert "run-time-model" in names and "fake-good-model" in names, names
        bpcore.Emotion.list_models()
        main(["list-models"])
        main(["plugins"])
        import bpcore.serving, bpcore.remote  # the server's entry points import no web framework either
        heavy = sorted(
            name
            for name in ("torch", "accelerate", "PIL", "safetensors", "fastapi", "starlette", "uvicorn", "ray")
            if name in sys.modules
        )
        print("HEAVY", heavy)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=subprocess_env([fake_distribution]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout


def test_task_with_a_model_class_and_a_device(tiny_plugin):
    task = bpcore.TextVectorisation(TinyTextModel, device="cpu")
    assert isinstance(task.model, TinyTextModel)
    assert task.model.device.type == "cpu"
    assert bpcore.TextVectorisation("tiny-text", device="cpu").model.device.type == "cpu"


def test_list_models_shows_caller_aliases(tiny_plugin):
    rows = AutoModel.list_models(task="image-vectorisation", aliases={"my-images": "tiny-image"})
    assert rows[0]["aliases"] == ["my-images"]


@pytest.mark.parametrize("name", ["Bad Name", "ab", "x" * 101, "UPPER-case"])
def test_model_names_are_checked(name):
    with pytest.raises(bpcore.InputError, match="name"):
        TinyTextModel(name=name)


class SecondTextDefault:
    @bpcore.hookimpl
    def register_models(self, register):
        register(
            name="tiny-text",  # the name another plugin already has
            factory="tiny_models:TinyTextModel",
            tasks=["text-vectorisation"],
            default_for=["text-vectorisation"],
            init_kwargs={"dim": 8},
        )


def test_a_clash_made_at_run_time_is_told_at_once(tiny_plugin):
    with pytest.warns(UserWarning, match="model name 'tiny-text' already means"):
        name = bpcore.register_plugin(SecondTextDefault(), name="second-default")
    bpcore.unregister_plugin(name)


def test_list_models_marks_the_default_a_task_really_picks(tiny_plugin, monkeypatch):
    with pytest.warns(UserWarning):
        name = bpcore.register_plugin(SecondTextDefault(), name="second-default")
    try:
        rows = AutoModel.list_models(task="text-vectorisation", return_dict=True)
        marked = [row_name for row_name, row in rows.items() if "text-vectorisation" in row["default_for"]]
        assert marked == ["tiny-text"] and bpcore.TextVectorisation().model.dim == 16

        monkeypatch.setenv("BPCORE_DEFAULTS", "text-vectorisation=second-default/tiny-text")
        rows = AutoModel.list_models(task="text-vectorisation", return_dict=True)
        marked = [row_name for row_name, row in rows.items() if "text-vectorisation" in row["default_for"]]
        assert marked == ["second-default/tiny-text"] and bpcore.TextVectorisation().model.dim == 8
    finally:
        bpcore.unregister_plugin(name)
