"""A saved folder is untrusted input: loading it runs no code; saving never loses data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from core_helpers import subprocess_env
from tiny_models import TinyTextModel

import bpcore

TEXTS = ["a first text", "and a second one"]


@pytest.fixture
def saved(tmp_path, seeded) -> Path:
    return Path(bpcore.save(TinyTextModel(name="saved-tiny"), path=tmp_path / "saved-tiny"))


def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


# -- loading runs no code -------------------------------------------------------------------------

MARKER_CODE = "import pathlib; pathlib.Path({marker!r}).write_text('ran')\nclass Model: pass\n"


def crafted_folders(root: Path, marker: Path) -> dict[str, tuple[Path, Path, str]]:
    """Folders that would run code if their class were imported: (folder, working directory)."""
    cases = {}
    # 1. The folder is a package: its __init__.py runs when "evil_pkg:Model" is imported from its parent.
    package = root / "package" / "evil_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MARKER_CODE.format(marker=str(marker)))
    cases["package"] = (package, package.parent, "evil_pkg:Model")
    # 2. A sibling module beside the folder.
    sibling = root / "sibling" / "model-folder"
    sibling.mkdir(parents=True)
    (sibling.parent / "evil_sibling.py").write_text(MARKER_CODE.format(marker=str(marker)))
    cases["sibling"] = (sibling, sibling.parent, "evil_sibling:Model")
    # 3. A standard-library module with import side effects.
    stdlib = root / "stdlib" / "model-folder"
    stdlib.mkdir(parents=True)
    cases["stdlib"] = (stdlib, stdlib.parent, "this:Model")
    return cases


@pytest.mark.parametrize("case", ["package", "sibling", "stdlib"])
def test_a_folder_crafted_to_run_code_runs_none(tmp_path, saved, case):
    marker = tmp_path / "marker"
    folder, cwd, class_path = crafted_folders(tmp_path / "crafted", marker)[case]
    for name in ("config.json", "model.safetensors", "requirements.txt"):
        (folder / name).write_bytes((saved / name).read_bytes())
    edit_config(folder, **{"class": class_path})
    code = textwrap.dedent(
        f"""
        import sys, bpcore
        for attempt in (lambda: bpcore.load({str(folder)!r}), lambda: bpcore.TextVectorisation({str(folder)!r}),
                        lambda: bpcore.load({folder.name!r})):
            try:
                attempt()
                print("LOADED")
            except bpcore.BpcoreError as error:
                print(type(error).__name__)
        print("this" in sys.modules)
        """
    )
    # With -c the working directory is on sys.path: exactly where the crafted modules sit.
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[:2] == ["UnsafeLoadError", "UnsafeLoadError"], result.stdout
    assert lines[-1] == "False"
    cli = subprocess.run(
        [sys.executable, "-m", "bpcore.cli", "run", "text-vectorisation", "x", "--model", str(folder)],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode != 0 and "no installed plugin registers" in cli.stderr
    assert not marker.exists(), "loading ran code from the folder"


class Local(TinyTextModel):
    """A user's own model class: no plugin registers it."""


def test_registered_classes_load_and_trust_code_is_the_explicit_opt_in(saved, tmp_path):
    assert isinstance(bpcore.load(saved), TinyTextModel)
    folder = Path(bpcore.save(Local(name="local-model"), path=tmp_path / "local"))
    with pytest.raises(bpcore.UnsafeLoadError, match="trust_code=True"):
        bpcore.load(folder)
    assert isinstance(bpcore.load(folder, trust_code=True), Local)


@pytest.mark.parametrize("weights", ["/etc/hostname", "../outside.safetensors", "", 5])
def test_file_names_in_the_config_stay_inside_the_folder(saved, weights):
    (saved.parent / "outside.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    config = json.loads((saved / "config.json").read_text())
    config["model"]["weights"] = weights
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.ModelLoadError):
        bpcore.load(saved)


def test_symlinks_and_fifos_in_a_folder_are_refused(saved, tmp_path):
    # The refusal is matched with the folder's path taken out: pytest names tmp_path after this
    # test, so "symlink" is in every path here, whatever the message says.
    def reason(error: BaseException) -> str:
        return str(error).replace(str(tmp_path), "<tmp>")

    (saved / "model.safetensors").rename(tmp_path / "real.safetensors")
    (saved / "model.safetensors").symlink_to(tmp_path / "real.safetensors")
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert "model.safetensors is a symlink" in reason(refused.value)
    (saved / "model.safetensors").unlink()
    os.mkfifo(saved / "model.safetensors")
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(outcome, lambda: bpcore.load(saved)), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "loading a folder with a FIFO hung"
    assert isinstance(outcome[0], bpcore.ModelLoadError)
    assert "model.safetensors is not a regular file" in reason(outcome[0])


def _capture(outcome: list[BaseException], action) -> None:
    try:
        action()
    except BaseException as error:  # noqa: BLE001 - the test inspects it
        outcome.append(error)


DEEP = {"class": "x:Y"}
for _ in range(40):
    DEEP = {"nested": DEEP}


@pytest.mark.parametrize(
    "config_text",
    [
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"class": "x:Y", "pad": "x" * (2 << 20)}),
        json.dumps(DEEP),
        "\udcff",
    ],
    ids=["deep-brackets", "huge", "deep-json", "not-utf8"],
)
def test_huge_or_deep_configs_are_load_errors(saved, config_text):
    (saved / "config.json").write_bytes(config_text.encode("utf-8", "surrogateescape"))
    with pytest.raises(bpcore.ModelLoadError):
        bpcore.load(saved)


@pytest.mark.parametrize(
    "changes",
    [
        {"tasks": 5},
        {"tasks": ["telepathy"]},
        {"name": "../../etc"},
        {"details": [1]},
        {"description": 3},
        {"model": 7},
    ],
    ids=["tasks-int", "tasks-unknown", "name-path", "details-list", "description-int", "model-int"],
)
def test_every_config_field_is_checked(saved, changes):
    edit_config(saved, **changes)
    with pytest.raises(bpcore.ModelLoadError, match="not a valid bpcore model config"):
        bpcore.load(saved)


def test_a_folder_in_the_current_directory_never_silently_shadows_a_saved_model(
    saved, tmp_path, monkeypatch, seeded
):
    home_model = TinyTextModel(name="shadowed")
    bpcore.save(home_model, "shadowed")
    local = tmp_path / "cwd"
    local.mkdir()
    bpcore.save(TinyTextModel(dim=8, name="shadowed"), path=local / "shadowed")
    monkeypatch.chdir(local)
    with pytest.warns(UserWarning, match="./shadowed"):
        loaded = bpcore.load("shadowed")
    assert loaded.dim == home_model.dim
    assert bpcore.load("./shadowed").dim == 8


# -- saving never loses data ----------------------------------------------------------------------


def test_saving_over_a_folder_that_is_not_a_model_is_refused(tmp_path, seeded):
    precious = tmp_path / "my-documents"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(bpcore.InputError, match="not a bpcore model folder"):
        bpcore.save(TinyTextModel(name="tiny-text"), path=precious)
    assert (precious / "thesis.txt").read_text() == "years of work"
    file = tmp_path / "a-file"
    file.write_text("keep me")
    with pytest.raises(bpcore.InputError, match="not a folder"):
        bpcore.save(TinyTextModel(name="tiny-text"), path=file)
    assert file.read_text() == "keep me"


def test_saving_into_the_current_folder_is_refused_without_debris(tmp_path, monkeypatch, seeded):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(bpcore.InputError, match="current folder"):
        bpcore.save(TinyTextModel(name="tiny-text"), path=".")
    assert list(tmp_path.iterdir()) == []


def test_tasks_given_as_one_string_are_one_task(tmp_path, seeded):
    folder = bpcore.save(
        TinyTextModel(name="tiny-text"), path=tmp_path / "one-task", tasks="text-vectorisation"
    )
    assert json.loads((folder / "config.json").read_text())["tasks"] == ["text-vectorisation"]
    with pytest.raises(bpcore.InputError, match=r"tasks\[0\]"):
        bpcore.save(TinyTextModel(name="tiny-text"), path=tmp_path / "bad", tasks="vectorise")


KILLED_SAVE = """
import os, sys, torch
sys.path.insert(0, {tests!r})
import bpcore, bpcore.saving as saving
from core_helpers import TinyClassesPlugin
from tiny_models import TinyTextModel
bpcore.register_plugin(TinyClassesPlugin())
torch.manual_seed(1)
step = {step!r}
if step == "before-swap":
    saving._swap_in = lambda staging, target: os._exit(9)
else:  # after the atomic exchange, before the old folder is removed
    real_exchange = saving._exchange
    saving._exchange = lambda first, second: real_exchange(first, second) and os._exit(9)
bpcore.save(TinyTextModel(name="killed"), path={target!r})
"""


@pytest.mark.parametrize("step", ["before-swap", "after-swap"])
def test_a_save_killed_at_any_step_leaves_the_old_or_the_new_model_and_no_debris(tmp_path, step):
    from core_helpers import TESTS_DIR

    torch.manual_seed(0)
    old = TinyTextModel(name="killed")
    target = tmp_path / "models" / "killed"
    bpcore.save(old, path=target)
    old_vectors = old({"text": TEXTS}, task="text-vectorisation")
    code = KILLED_SAVE.format(tests=str(TESTS_DIR), step=step, target=str(target))
    result = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 9, result.stderr
    loaded = bpcore.load(target)({"text": TEXTS}, task="text-vectorisation")
    torch.manual_seed(1)
    new_vectors = TinyTextModel(name="killed")({"text": TEXTS}, task="text-vectorisation")
    assert loaded in (old_vectors, new_vectors)
    assert loaded == (old_vectors if step == "before-swap" else new_vectors)
    # The next save cleans up what the killed one left behind.
    bpcore.save(old, path=target)
    assert sorted(path.name for path in target.parent.iterdir()) == ["killed"]


def test_concurrent_saves_of_one_name_end_consistent(tmp_path):
    from core_helpers import TESTS_DIR

    target = tmp_path / "models" / "shared"
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        import bpcore
        from tiny_models import TinyTextModel
        for _ in range(5):
            bpcore.save(TinyTextModel(name="shared"), path={str(target)!r})
        print("ok")
        """
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:
        out, err = run.communicate(timeout=180)
        assert run.returncode == 0 and out.strip() == "ok", err
    assert isinstance(bpcore.load(target), TinyTextModel)
    assert sorted(path.name for path in target.parent.iterdir()) == ["shared"]
