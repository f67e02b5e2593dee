"""The ``bpcore`` command: list-models, plugins, run, and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from core_helpers import TEST_PLUGIN_NAME, subprocess_env
from tiny_models import TinyTextModel

import bpcore
from bpcore.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_models_table(tiny_plugin, capsys):
    code, out, _ = run_cli(capsys, "list-models")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["tiny-image", "tiny-t2t", "tiny-text", "tiny-text-wide"]
    tiny_line = next(line for line in lines if line.startswith("tiny-text "))
    assert "text-vectorisation" in tiny_line and "default" in tiny_line and "tiny-base" in tiny_line


def test_list_models_json_task_limit_pattern(tiny_plugin, capsys):
    code, out, _ = run_cli(capsys, "list-models", "--json", "--task", "text-classification")
    assert code == 0
    assert [row["name"] for row in json.loads(out)] == ["tiny-text", "tiny-text-wide"]

    _, out, _ = run_cli(capsys, "list-models", "--json", "--limit", "1")
    assert [row["name"] for row in json.loads(out)] == ["tiny-image"]

    _, out, _ = run_cli(capsys, "list-models", "--json", "--pattern", "*t2t")
    rows = json.loads(out)
    assert [row["name"] for row in rows] == ["tiny-t2t"]
    assert rows[0]["tasks"] == ["qa", "emotion", "summarisation", "text-generation"]


def test_list_models_verbose_shows_descriptions(tiny_plugin, capsys):
    _, out, _ = run_cli(capsys, "list-models", "-v", "--task", "image-vectorisation")
    assert "tiny convolutional net" in out


def test_list_models_without_plugins_says_what_to_install(capsys):
    code, out, _ = run_cli(capsys, "list-models")
    assert code == 0 and "pip install" in out
    _, out, _ = run_cli(capsys, "list-models", "--json")
    assert json.loads(out) == []


def test_list_models_rejects_an_unknown_task(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["list-models", "--task", "telepathy"])
    assert exited.value.code == 2
    assert "telepathy" in capsys.readouterr().err


def test_plugins_json_and_table(tiny_plugin, capsys):
    class Broken:
        @bpcore.hookimpl
        def register_models(self, register):
            register(name="Broken Name", factory="tiny_models:TinyTextModel", tasks=["emotion"])

    broken = bpcore.register_plugin(Broken(), name="broken-specs")
    try:
        code, out, _ = run_cli(capsys, "plugins", "--json")
        assert code == 0
        rows = {row["name"]: row for row in json.loads(out)}
        assert rows[TEST_PLUGIN_NAME]["models"] == 4 and rows[TEST_PLUGIN_NAME]["error"] is None
        assert rows["broken-specs"]["models"] == 0
        assert any("Broken Name" in problem for problem in rows["broken-specs"]["problems"])

        code, out, _ = run_cli(capsys, "plugins")
        assert code == 0
        assert TEST_PLUGIN_NAME in out and "4 models" in out and "Broken Name" in out
    finally:
        bpcore.unregister_plugin(broken)


def test_run_text_vectorisation(tiny_plugin, capsys):
    torch.manual_seed(0)
    code, out, _ = run_cli(capsys, "run", "text-vectorisation", "iPhone 12 128GB")
    assert code == 0
    vector = json.loads(out)
    assert len(vector) == 16 and all(isinstance(value, float) for value in vector)
    torch.manual_seed(0)  # the same tiny model, built again
    expected = bpcore.TextVectorisation("tiny-text")("iPhone 12 128GB")
    assert vector == pytest.approx(expected, abs=1e-6)

    code, out, _ = run_cli(capsys, "run", "text-vectorisation", "one", "two", "--model", "tiny-text-wide")
    vectors = json.loads(out)
    assert code == 0 and len(vectors) == 2 and len(vectors[0]) == 32


def test_run_text_classification_with_labels_and_top_k(tiny_plugin, capsys):
    code, out, _ = run_cli(
        capsys,
        "run",
        "text-classification",
        "I am mad because my product broke.",
        "--labels",
        "product issue",
        "nature",
    )
    assert code == 0
    scores = json.loads(out)
    assert set(scores) == {"product issue", "nature"}
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)

    _, out, _ = run_cli(
        capsys, "run", "text-classification", "my product broke", "--labels", "a", "b", "c", "--top-k", "2"
    )
    assert len(json.loads(out)) == 2


def test_run_with_a_saved_model(capsys, seeded, tmp_path):
    model = TinyTextModel(dim=6)
    folder = bpcore.save(model, path=tmp_path / "cli-model")
    code, out, _ = run_cli(capsys, "run", "text-vectorisation", "hello", "--model", str(folder))
    assert code == 0 and json.loads(out) == pytest.approx(model({"text": ["hello"]})[0], abs=1e-6)


def test_run_text_generation_with_settings(tiny_plugin, capsys):
    code, out, _ = run_cli(capsys, "run", "text-generation", "Once upon a time", "--set", "max_length=3")
    assert code == 0
    assert isinstance(json.loads(out), str) and len(json.loads(out)) <= 3


def test_run_qa_with_context(tiny_plugin, capsys):
    code, out, _ = run_cli(
        capsys, "run", "qa", "Where does Sally live?", "--context", "Sally lives in London."
    )
    assert code == 0 and isinstance(json.loads(out), str)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "text-classification", "some text", "--labels", "same", "same"], "input.labels[0]"),
        (["run", "text-classification", "some text", "--labels", "a", "b", "--top-k", "-1"], "input.top_k"),
        (["run", "text-vectorisation", "hello", "--model", "no-such-model"], "no-such-model"),
        (["run", "emotion", "hello", "--model", "tiny-text"], "does not support"),
        (["run", "text-generation", "hello", "--set", "temperature=-1"], "input.temperature"),
        (["run", "text-generation", "hello", "--set", "no_such_option=1"], "no_such_option"),
    ],
    ids=[
        "duplicate-label",
        "negative-top-k",
        "unknown-model",
        "unsupported-task",
        "bad-option",
        "unknown-option",
    ],
)
def test_run_errors_exit_2_with_a_clear_message(tiny_plugin, capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("bpcore: error:") and message in err
    assert "Traceback" not in err


def test_run_qa_without_context_is_a_usage_error(tiny_plugin, capsys):
    code, out, err = run_cli(capsys, "run", "qa", "Where does Sally live?")
    assert code == 2 and out == ""
    assert err.startswith("bpcore: error: --context")


def test_run_without_a_model_for_the_task_names_the_distribution(capsys):
    code, _, err = run_cli(capsys, "run", "summarisation", "A long text.")
    assert code == 2 and "bp-hf" in err


def test_list_models_json_in_a_real_process(tmp_path):
    script = tmp_path / "site" / "cli_test_plugin.py"
    script.parent.mkdir()
    script.write_text(
        "import bpcore\n\n"
        "@bpcore.hookimpl\n"
        "def register_models(register):\n"
        '    register(name="cli-subprocess-model", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"])\n'
    )
    dist = tmp_path / "site" / "cli_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cli-test-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[bpcore]\ncli-test = cli_test_plugin\n")
    command = Path(sys.executable).parent / "bpcore"  # the installed console script
    assert command.is_file()
    result = subprocess.run(
        [str(command), "list-models", "--json"],
        env=subprocess_env([script.parent]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    model = next(row for row in rows if row["name"] == "cli-subprocess-model")
    assert model["plugin"] == "cli-test" and model["tasks"] == ["text-vectorisation"]


def test_console_script_is_installed():
    from importlib.metadata import entry_points

    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts")}
    assert scripts.get("bpcore") == "bpcore.cli:main"


def test_run_image_tasks_with_paths(tiny_plugin, capsys, image_files):
    red, blue = str(image_files["red"]), str(image_files["blue"])
    code, out, _ = run_cli(capsys, "run", "image-classification", red, blue, "--labels", "red", "blue")
    assert code == 0
    scores = json.loads(out)
    assert len(scores) == 2 and all(set(item) == {"red", "blue"} for item in scores)

    code, out, _ = run_cli(capsys, "run", "image-text-vectorisation", red, "--text", "a red square")
    assert code == 0 and len(json.loads(out)) == 16

    code, _, err = run_cli(
        capsys, "run", "image-vectorisation", red, str(image_files["red"].parent / "gone.png")
    )
    assert code == 2 and "input.image[1]" in err


# -- failures: one line on stderr, exit 2 (usage) or 1 (failure) or 130 (Ctrl-C), never a traceback --


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith(("Loading", "finetuning"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("bpcore: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "text-vectorisation", "hi", "--set", "return_tensor=true"], "--set return_tensor"),
        (["run", "text-vectorisation", "hi", "--top-k", "3"], "--top-k"),
        (["run", "text-vectorisation", "hi", "--labels", "a", "b"], "--labels"),
        (["run", "text-vectorisation", "hi", "--context", "c"], "--context"),
        (["run", "text-vectorisation", "hi", "--set", "text=other"], "--set text"),
        (["run", "text-vectorisation", "hi", "--device", "bogus"], "device"),
        (["run", "text-vectorisation", "hi", "--device", "cuda:7"], "device"),
        (["run", "text-vectorisation", "bad \udcff byte"], "input.text[0]"),
        (["run", "text-classification", "hi", "--labels", "x\udcff"], "input.labels[0][0]"),
        (["list-models", "--limit", "-1"], "--limit"),
        (["list-models", "--task", "telepathy"], "telepathy"),
        (["run", "text-vectorisation"], "inputs"),
        (["run", "qa", "q", "--set", "bad"], "KEY=VALUE"),
    ],
    ids=[
        "return-tensor",
        "top-k-on-vectorisation",
        "labels-on-vectorisation",
        "context-on-vectorisation",
        "set-an-item",
        "bogus-device",
        "absent-cuda",
        "surrogate-input",
        "surrogate-label",
        "negative-limit",
        "unknown-task",
        "no-inputs",
        "bad-setting",
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tiny_plugin, capsys, args, message):
    try:
        code = main(args)
    except SystemExit as exited:  # argparse's own usage errors
        code = exited.code
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert message in one_line_error(captured.err)


def test_a_bad_model_folder_is_one_line(tmp_path, capsys):
    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    code, out, err = run_cli(capsys, "run", "text-vectorisation", "hi", "--model", str(folder))
    assert code in (1, 2) and out == ""
    one_line_error(err)


def test_a_pattern_with_no_match_says_so(tiny_plugin, capsys):
    code, out, _ = run_cli(capsys, "list-models", "--pattern", "nothing-like-this*")
    assert code == 0 and "nothing-like-this*" in out and "install a plugin" not in out


def test_list_models_of_one_plugin(tiny_plugin, capsys):
    class Other:
        @bpcore.hookimpl
        def register_models(self, register):
            register(name="other-model", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"])

    name = bpcore.register_plugin(Other(), name="other-plugin")
    try:
        code, out, _ = run_cli(capsys, "list-models", "--plugin", "other-plugin", "--json")
        assert code == 0 and [row["name"] for row in json.loads(out)] == ["other-model"]
        assert [row["name"] for row in bpcore.models.AutoModel.list_models(plugin="other-plugin")] == [
            "other-model"
        ]
        code, out, _ = run_cli(capsys, "list-models", "--plugin", "no-such-plugin")
        assert code == 0 and "no model of plugin 'no-such-plugin'" in out
    finally:
        bpcore.unregister_plugin(name)


def test_a_failing_factory_and_a_plugin_bug_exit_1_in_one_line(capsys):
    class Broken:
        @bpcore.hookimpl
        def register_models(self, register):
            register(name="broken-factory", factory="tiny_models:no_such_factory", tasks=["emotion"])
            register(name="buggy-model", factory="test_core_cli:buggy_model", tasks=["emotion"])

    name = bpcore.register_plugin(Broken(), name="broken-factories")
    try:
        code, out, err = run_cli(capsys, "run", "emotion", "hi", "--model", "broken-factory")
        assert code == 1 and out == "" and "broken-factory" in one_line_error(err)
        code, out, err = run_cli(capsys, "run", "emotion", "hi", "--model", "buggy-model")
        assert code == 1 and out == "" and "KeyError" in one_line_error(err)
    finally:
        bpcore.unregister_plugin(name)


class _BuggyModel:
    tasks = ["emotion"]
    name = "buggy-model"

    def __call__(self, task_input, task):
        raise KeyError("a bug inside the model")


def buggy_model(**kwargs):
    return _BuggyModel()


def test_ctrl_c_and_sys_exit_in_a_run(monkeypatch, tiny_plugin, capsys):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bpcore.TextVectorisation, "__call__", interrupted)
    code, out, err = run_cli(capsys, "run", "text-vectorisation", "hi")
    assert code == 130 and "interrupted" in one_line_error(err)

    def exits(self, *args, **kwargs):
        sys.exit(3)

    monkeypatch.setattr(bpcore.TextVectorisation, "__call__", exits)
    code, out, err = run_cli(capsys, "run", "text-vectorisation", "hi")
    assert code == 1 and "sys.exit(3)" in one_line_error(err)


def run_bpcore(args: list[str], site: Path | None = None, stdout: object = subprocess.PIPE, **env: str):
    command = Path(sys.executable).parent / "bpcore"
    return subprocess.run(
        [str(command), *args],
        env=subprocess_env([site] if site else None, **env),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )


def fake_plugins(site: Path, modules: dict[str, str]) -> Path:
    """One distribution per module, each with a ``bpcore`` entry point named after the module."""
    for module, source in modules.items():
        dist = site / f"{module}-0.1.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n"
        )
        (dist / "entry_points.txt").write_text(f"[bpcore]\n{module} = {module}\n")
        (site / f"{module}.py").write_text(source)
    return site


GOOD_PLUGIN = (
    "import bpcore\n\n@bpcore.hookimpl\ndef register_models(register):\n"
    '    register(name="good-model", factory="tiny_models:TinyTextModel", tasks=["text-vectorisation"])\n'
)


@pytest.mark.parametrize(
    "bad_source",
    [
        "import sys\nsys.exit(4)\n",
        "raise KeyboardInterrupt\n",
        "import bpcore, sys\n\n@bpcore.hookimpl\ndef register_models(register):\n    sys.exit()\n",
        "import bpcore\n\n@bpcore.hookimpl\ndef register_models(register):\n    raise KeyboardInterrupt\n",
    ],
    ids=["exit-on-import", "interrupt-on-import", "exit-in-hook", "interrupt-in-hook"],
)
def test_a_plugin_never_takes_the_listing_down(tmp_path, bad_source):
    site = fake_plugins(tmp_path / "site", {"a_bad_plugin": bad_source, "b_good_plugin": GOOD_PLUGIN})
    env = {"BPCORE_LOAD_PLUGINS": "a_bad_plugin,b_good_plugin"}
    listed = run_bpcore(["list-models"], site, **env)
    assert listed.returncode == 0, listed.stderr
    assert "good-model" in listed.stdout and "Traceback" not in listed.stderr
    shown = run_bpcore(["plugins"], site, **env)
    assert shown.returncode == 0, shown.stderr
    assert "b_good_plugin" in shown.stdout and "Traceback" not in shown.stderr


def test_stdout_on_a_full_disk_is_one_line_exit_1():
    with open("/dev/full", "w") as full:
        result = run_bpcore(["list-models", "--json"], stdout=full)
    assert result.returncode == 1
    assert "No space left" in one_line_error(result.stderr)


def test_a_reader_that_stopped_reading_gets_no_error_line():
    """``bpcore ... | head``: the pipe closes early; like ``ls | head``, nothing is said on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w") as closed_pipe:
        result = run_bpcore(["list-models", "--json"], stdout=closed_pipe)
    assert result.returncode == 1
    assert result.stderr == ""


def test_ctrl_c_exits_130_in_one_line(tmp_path):
    import signal
    import time

    marker = tmp_path / "loading"
    site = fake_plugins(  # still loading when Ctrl-C comes
        tmp_path / "site",
        {"slow_plugin": f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(60)\n"},
    )
    command = Path(sys.executable).parent / "bpcore"
    process = subprocess.Popen(
        [str(command), "list-models"],
        env=subprocess_env([site], BPCORE_LOAD_PLUGINS="slow_plugin"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in one_line_error(err)


def test_a_non_utf8_argument_in_a_real_process(tiny_plugin, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bpcore.cli", "list-models", "--pattern", b"\xff*"],
        env=subprocess_env(),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0 and b"Traceback" not in result.stderr
