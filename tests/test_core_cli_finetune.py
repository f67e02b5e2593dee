"""``bpcore finetune``: real runs of the tiny models from JSON Lines, CSV and image data files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from core_helpers import subprocess_env
from PIL import Image
from tiny_models import TinyTextModel

import bpcore
from bpcore.cli import main

CLASSIFICATION = [
    ("parliament passed the new election bill", "politics"),
    ("the senate votes on the tax law", "politics"),
    ("the president signed a new law", "politics"),
    ("the minister resigned after the vote", "politics"),
    ("researchers published a physics paper", "science"),
    ("a new telescope measured distant galaxies", "science"),
    ("the lab sequenced the genome of a plant", "science"),
    ("scientists ran an experiment on cells", "science"),
    ("the film won an award for best actor", "film"),
    ("the movie review praised the director", "film"),
    ("a new comedy film opened in cinemas", "film"),
    ("the actress starred in a drama film", "film"),
]
QUESTIONS = ["a vote on the new law", "a telescope saw a comet", "the director made a drama"]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    """The one line a failure prints (warnings, which some runs print first, aside)."""
    lines = [line for line in err.splitlines() if not line.startswith("bpcore: warning:")]
    assert len(lines) == 1 and lines[0].startswith("bpcore: error: "), err
    assert "Traceback" not in err
    return lines[0]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def classification_file(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "train.jsonl", [{"texts": t, "labels": label} for t, label in CLASSIFICATION]
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder of its own, so that relative paths (``--save ./x``, checkpoints) land in tmp_path."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def table_of(out: str) -> tuple[list[list[str]], dict[str, str]]:
    """The summary's epoch rows (cells) and its ``key: value`` lines."""
    head, _, tail = out.partition("\n\n")
    lines = head.splitlines()
    assert lines[0].split() == ["epoch", "train", "loss", "val", "loss", "seconds"]
    rows = [line.split() for line in lines[1:]]
    facts = dict(line.split(": ", 1) for line in tail.splitlines())
    return rows, facts


def test_finetune_text_classification_from_jsonl_and_load_the_saved_model(
    tiny_plugin, classification_file, bpcore_home, workdir, capsys
):
    args = ["--model", "tiny-text", "--epochs", "4", "--early-stopping-epochs", "0", "--seed", "3"]
    torch.manual_seed(0)
    code, out, err = run_cli(
        capsys,
        "finetune",
        "text-classification",
        "--data",
        str(classification_file),
        *args,
        "--save",
        "my-classifier",
    )
    assert code == 0, err
    assert "Traceback" not in err

    rows, facts = table_of(out)
    assert [row[0].rstrip("*") for row in rows] == ["1", "2", "3", "4"]
    starred = [row[0].rstrip("*") for row in rows if row[0].endswith("*")]
    best_row = next(row for row in rows if row[0].endswith("*"))
    assert facts["best epoch"] == f"{starred[0]} (val loss {best_row[2]})" and len(starred) == 1
    assert all(math.isfinite(float(cell)) for row in rows for cell in row[1:])
    assert facts["stopped early"] == "no"
    assert facts["validated on"] == "validation split"
    assert facts["variant"] == "single_label"
    assert facts["seed"] == "3"
    # Wall-clock seconds of the run, in hundredths (a tiny model takes a few).
    assert facts["time"].endswith("s") and float(facts["time"][:-1]) >= 0
    saved = Path(facts["saved to"])
    assert saved == bpcore_home / "my-classifier" and (saved / "config.json").is_file()
    assert not any(workdir.iterdir())  # a name saves under $BPCORE_HOME, never in the working folder

    # The same run through the Python API: the saved model answers as the finetuned one does.
    torch.manual_seed(0)
    tc = bpcore.TextClassification("tiny-text")
    params = {"texts": [t for t, _ in CLASSIFICATION], "labels": [label for _, label in CLASSIFICATION]}
    history = tc.finetune(params, epochs=4, early_stopping_epochs=0, seed=3)
    assert [f"{loss:.4f}" for loss in history.val_loss] == [row[2] for row in rows]
    loaded = bpcore.TextClassification(bpcore.load("my-classifier"))
    for got, expected in zip(loaded(QUESTIONS), tc(QUESTIONS)):
        assert got.keys() == expected.keys() == {"politics", "science", "film"}
        assert got == pytest.approx(expected, abs=1e-6)


def test_csv_with_json_list_cells(tiny_plugin, tmp_path, workdir, capsys):
    # Multi-label: each labels cell a JSON list; the columns fit both variants, the lists only multi_label.
    multi = tmp_path / "multi.csv"
    multi.write_text(
        "texts,labels\n" + "".join(f'"{text}","[""{label}"", ""news""]"\n' for text, label in CLASSIFICATION),
        encoding="utf-8",
    )
    code, out, err = run_cli(
        capsys, "finetune", "text-classification", "--data", str(multi), "--model", "tiny-text",
        "--epochs", "2", "--seed", "1", "--json", "--quiet", "--set", "max_length=40",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["variant"] == "multi_label"
    assert len(result["epochs"]) == 2 and result["saved"] is None and result["plot"] is None
    assert result["seed"] == 1 and result["best_epoch"] in (1, 2)

    # Triplets: integer groups, read from text cells.
    triplets = tmp_path / "triplets.csv"
    triplets.write_text(
        "texts,groups\n"
        "Steel crowbar with angled beak 300mm,0\nCrowbar tempered steel 300m angled,0\n"
        "Sturdy ceramic mug microwave-safe,1\nCeramic coffee mug 350ml,1\n"
        "Dad hat with funny ghost picture,2\nBaseball cap with a ghost,2\n",
        encoding="utf-8",
    )
    code, out, err = run_cli(
        capsys, "finetune", "text-vectorisation", "--data", str(triplets), "--model", "tiny-text",
        "--epochs", "2", "--batch-size", "6", "--save", "./models/search",
    )  # fmt: skip
    assert code == 0, err
    rows, facts = table_of(out)
    assert facts["variant"] == "triplet" and len(rows) <= 2
    assert Path(facts["saved to"]) == Path("models/search")
    assert bpcore.TextVectorisation(str(workdir / "models" / "search"))("a crowbar") == pytest.approx(
        bpcore.TextVectorisation(bpcore.load("./models/search"))("a crowbar")
    )


def test_image_classification_from_csv_with_paths_relative_to_the_file(
    tiny_plugin, tmp_path, workdir, capsys
):
    data = tmp_path / "shop"
    (data / "photos").mkdir(parents=True)
    lines = ["images,labels"]
    for index in range(4):
        for label, colour in (("red", (220 - 20 * index, 20, 20)), ("blue", (20, 30, 230 - 20 * index))):
            Image.new("RGB", (8, 8), colour).save(data / "photos" / f"{label}{index}.png")
            lines.append(f"photos/{label}{index}.png,{label}")
    (data / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    # Run from another folder: the paths are relative to the data file, not to the working folder.
    code, out, err = run_cli(
        capsys, "finetune", "image-classification", "--data", str(data / "train.csv"),
        "--epochs", "3", "--validation-split", "0.25", "--seed", "0", "--save", "colours",
    )  # fmt: skip
    assert code == 0, err
    _, facts = table_of(out)
    assert facts["variant"] == "single_label"
    classify = bpcore.ImageClassification(bpcore.load("colours"))
    scores = classify(str(data / "photos" / "red0.png"))
    assert set(scores) == {"red", "blue"}


def test_plot_writes_a_png(tiny_plugin, classification_file, workdir, capsys):
    pytest.importorskip("matplotlib")
    code, out, err = run_cli(
        capsys, "finetune", "text-classification", "--data", str(classification_file),
        "--epochs", "2", "--plot", "plots/loss.png",
    )  # fmt: skip
    assert code == 0, err
    _, facts = table_of(out)
    assert facts["plot"] == "plots/loss.png"
    assert (workdir / "plots" / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


BAD_DATA = [
    (
        "bad.jsonl",
        '{"texts": "a", "labels": "x"}\n{"texts": "b", "labels": }\n',
        "data: line 2: not valid JSON",
    ),
    ("missing.jsonl", '{"texts": "a", "labels": "x"}\n{"texts": "b"}\n', "data: line 2: has no 'labels'"),
    ("nolabels.csv", "texts\nsome text\n", "data: line 1: no column 'labels'"),
    ("unknown.jsonl", '{"texts": "a", "label": "x"}\n', "data: line 1: unknown column 'label'"),
    ("empty.jsonl", "", "data: empty.jsonl has no rows"),
    ("train.txt", "texts,labels\na,x\n", "data: 'train.txt' has an ending bpcore does not read"),
    ("blank.csv", "texts,labels\nfine,x\n  ,y\nalso fine,y\n", "data: line 3, column texts: is empty"),
    (
        "number.jsonl",
        '{"texts": "a", "labels": "x"}\n{"texts": "b", "labels": 2}\n',
        "data: line 2, column labels:",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_DATA, ids=[case[0] for case in BAD_DATA])
def test_bad_data_is_one_line_naming_the_line_and_column(
    tiny_plugin, tmp_path, capsys, name, content, message
):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code, out, err = run_cli(capsys, "finetune", "text-classification", "--data", str(path), "--epochs", "1")
    assert code == 2 and out == ""
    assert error_line(err).startswith(f"bpcore: error: {message}")


def test_bad_data_is_reported_before_the_model_loads(tiny_plugin, tmp_path, capsys):
    path = tmp_path / "blank.csv"
    path.write_text("texts,labels\nfine,x\n  ,y\n", encoding="utf-8")
    # A model that cannot load: the data's problem is still what the user hears first.
    code, _, err = run_cli(
        capsys, "finetune", "text-classification", "--data", str(path), "--model", "no-such-model"
    )
    assert code == 2
    assert error_line(err).startswith("bpcore: error: data: line 3, column texts: is empty")


def test_an_image_that_does_not_exist(tiny_plugin, tmp_path, capsys):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "red.png")
    path = tmp_path / "images.jsonl"
    write_jsonl(path, [{"images": "red.png", "labels": "red"}, {"images": "gone/blue.png", "labels": "blue"}])
    code, out, err = run_cli(capsys, "finetune", "image-classification", "--data", str(path))
    assert code == 2 and out == ""
    line = error_line(err)
    assert "line 2, column images: no image file at 'gone/blue.png'" in line and str(tmp_path) in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "no_such_option=1"],
            "--set: text-classification finetuning takes no option 'no_such_option'",
        ),
        (["--set", "step=1"], "--set step: step cannot be given on the command line"),
        (["--epochs", "2", "--set", "epochs=3"], "--epochs: given twice"),
        (["--variant", "triplet"], "variant: unknown variant 'triplet'"),
        (["--epochs", "0"], "epochs: must be an integer >= 1"),
        (["--save", "Not A Name"], "--save: 'Not A Name' is not a valid model name"),
        (["--plot", "loss.pdf"], "--plot: must end in .png"),
        (["--model", "no-such-model"], "no-such-model"),
    ],
    ids=[
        "unknown-set",
        "python-only",
        "twice",
        "bad-variant",
        "no-epochs",
        "bad-name",
        "not-png",
        "no-model",
    ],
)
def test_option_errors_are_one_line(tiny_plugin, classification_file, capsys, args, message):
    code, out, err = run_cli(
        capsys, "finetune", "text-classification", "--data", str(classification_file), *args
    )
    assert code == 2 and out == ""
    assert message in error_line(err)


def test_variant_that_does_not_fit_the_columns_and_a_task_without_variants(
    tiny_plugin, classification_file, capsys
):
    code, _, err = run_cli(
        capsys, "finetune", "emotion", "--data", str(classification_file), "--variant", "x"
    )
    assert code == 2 and "--variant: emotion has no finetuning variants" in error_line(err)
    pairs = classification_file.with_name("pairs.csv")
    pairs.write_text("texts1,texts2,similarity_scores\na,b,1\n", encoding="utf-8")
    code, _, err = run_cli(
        capsys, "finetune", "text-vectorisation", "--data", str(pairs), "--variant", "triplet"
    )
    assert code == 2 and "do not fit variant 'triplet', which takes texts, groups" in error_line(err)


class NanInThirdEpoch(TinyTextModel):
    """A text classifier whose loss becomes NaN in the third epoch (each epoch: a training and a validation batch)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = 0

    def training_step(self, batch, task):
        self.steps += 1
        loss = super().training_step(batch, task)
        return loss * math.nan if self.steps > 4 else loss


class NanPlugin:
    @bpcore.hookimpl
    def register_models(self, register):
        register(
            name="tiny-nan",
            factory=f"{__name__}:NanInThirdEpoch",
            tasks=["text-classification"],
            finetunable=["text-classification"],
        )


def test_a_failed_run_keeps_the_best_epoch(classification_file, bpcore_home, capsys):
    name = bpcore.register_plugin(NanPlugin(), name="nan-plugin")
    try:
        code, out, err = run_cli(
            capsys, "finetune", "text-classification", "--data", str(classification_file), "--model", "tiny-nan",
            "--epochs", "5", "--batch-size", "16", "--validation-split", "0.25", "--early-stopping-epochs", "0",
            "--save", "best-so-far",
        )  # fmt: skip
    finally:
        bpcore.unregister_plugin(name)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 2 and "Traceback" not in err, err
    assert lines[0].startswith("bpcore: error: the training loss in epoch 3, batch 0 became nan")
    assert lines[1].startswith(
        "bpcore: 2 epoch(s) finished before the error; saved the weights of the best, epoch"
    )
    assert lines[1].endswith(f"to {bpcore_home / 'best-so-far'}")
    assert (bpcore_home / "best-so-far" / "config.json").is_file()


def test_the_real_command_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"texts": "a", "labels": "x"}\n{"texts": "b", "labels": "y"\n', encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "bpcore"), "finetune", "text-classification", "--data", str(path)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("bpcore: error: data: line 2: not valid JSON"), result.stderr
    assert len(result.stderr.splitlines()) == 1


# -- the loop options (checkpoints, learning-rate schedules), passed through to finetune -----------


def test_checkpoint_dir_and_resume(tiny_plugin, classification_file, workdir, capsys):
    common = [
        "finetune", "text-classification", "--data", str(classification_file), "--model", "tiny-text",
        "--epochs", "2", "--early-stopping-epochs", "0", "--seed", "5", "--checkpoint-dir", "checkpoints",
        "--set", "lr_scheduler=cosine", "--set", "max_grad_norm=1.0",
    ]  # fmt: skip
    code, out, err = run_cli(capsys, *common)
    assert code == 0, err
    first, _ = table_of(out)
    assert any((workdir / "checkpoints").iterdir())
    # The run finished, so resuming it trains no more: it reports the epochs it restored.
    code, out, err = run_cli(capsys, *common, "--resume")
    assert code == 0, err
    rows, facts = table_of(out)
    assert facts["resumed after epoch"] == "2"
    assert [row[:3] for row in rows] == [row[:3] for row in first]
