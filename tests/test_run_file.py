"""Batch inference over files: ``bpcore.run_file`` and ``bpcore run TASK --data IN --out OUT``.

Every answer is checked against a direct call of the same task on the same model; resuming is
checked by stopping runs for real (a killed process, a file cut mid-line) and counting rows.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_helpers import subprocess_env
from test_core_cli import fake_plugins

import bpcore
from bpcore.cli import main

TEXTS = [f"text number {i}: {'lorem ipsum ' * (i % 4)}{chr(65 + i % 26)}" for i in range(11)]
SEEDED = "seeded-tiny-text"
# A plugin whose model starts from the same weights in every process: the subprocess runs answer
# as this process's direct calls (and no saved model has to be written and loaded).
SEEDED_PLUGIN = f"""
import bpcore, torch

def seeded_tiny_text(**kwargs):
    from tiny_models import TinyTextModel
    torch.manual_seed(0)
    return TinyTextModel(**kwargs)

@bpcore.hookimpl
def register_models(register):
    register(name={SEEDED!r}, factory="run_file_models:seeded_tiny_text",
             tasks=["text-vectorisation", "text-classification"])
"""


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` in the format of ``path``'s ending (list cells of a CSV as JSON)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif path.suffix == ".csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read_answers(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def text_rows(texts: list[str] = TEXTS) -> list[dict[str, Any]]:
    return [{"id": f"t{i}", "text": text} for i, text in enumerate(texts)]


@pytest.fixture
def tv(tiny_plugin, seeded) -> bpcore.TextVectorisation:
    return bpcore.TextVectorisation()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The seeded model's plugin, installed for subprocesses and registered here."""
    folder = fake_plugins(tmp_path / "site", {"run_file_models": SEEDED_PLUGIN})
    monkeypatch.syspath_prepend(str(folder))
    import run_file_models

    name = bpcore.register_plugin(run_file_models, name="run-file-models")
    try:
        yield folder
    finally:
        bpcore.unregister_plugin(name)
        sys.modules.pop("run_file_models", None)


# -- answers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [".jsonl", ".csv", ".parquet"])
def test_answers_equal_direct_calls_in_input_order(tv, tmp_path, ending):
    data = write_rows(tmp_path / f"in{ending}", text_rows())
    summary = bpcore.run_file(tv, data, tmp_path / "out.jsonl", batch_size=4)
    lines = read_answers(tmp_path / "out.jsonl")
    assert [line["row"] for line in lines] == list(range(1, len(TEXTS) + 1))
    assert [line["id"] for line in lines] == [f"t{i}" for i in range(len(TEXTS))]
    assert [line["answer"] for line in lines] == tv(TEXTS)
    assert (summary.rows, summary.resumed, summary.answered) == (len(TEXTS), 0, len(TEXTS))


def test_rows_without_ids_get_row_numbers_only(tv, tmp_path):
    data = write_rows(tmp_path / "in.jsonl", [{"text": text} for text in TEXTS[:3]])
    bpcore.run_file(tv, data, tmp_path / "out.jsonl")
    lines = read_answers(tmp_path / "out.jsonl")
    assert [sorted(line) for line in lines] == [["answer", "row"]] * 3
    assert [line["answer"] for line in lines] == tv(TEXTS[:3])


@pytest.mark.parametrize("ending", [".jsonl", ".csv"])
def test_classification_with_labels_per_row_or_for_all(tiny_plugin, seeded, tmp_path, ending):
    tc = bpcore.TextClassification()
    labels = [["cat", "dog", "bird"], ["red", "blue"], ["up", "down", "left"]] * 2
    rows = [{"text": text, "labels": own} for text, own in zip(TEXTS, labels)]
    bpcore.run_file(tc, write_rows(tmp_path / f"own-in{ending}", rows), tmp_path / "own.jsonl", top_k=2)
    expected = tc(TEXTS[: len(labels)], labels, top_k=2)
    assert [line["answer"] for line in read_answers(tmp_path / "own.jsonl")] == expected
    shared = ["sports", "politics"]
    rows = [{"text": text} for text in TEXTS]
    bpcore.run_file(tc, write_rows(tmp_path / f"all-in{ending}", rows), tmp_path / "all.jsonl", labels=shared)
    assert [line["answer"] for line in read_answers(tmp_path / "all.jsonl")] == tc(TEXTS, shared)


def test_qa_with_a_context_per_row_or_one_for_all(tiny_plugin, seeded, tmp_path):
    qa = bpcore.QA()
    questions = ["Where does Sally live?", "Who is Bob?", "What is it?"]
    contexts = ["Sally lives in London.", "Bob is a builder.", "It is a test."]
    rows = [{"question": q, "context": c} for q, c in zip(questions, contexts)]
    bpcore.run_file(qa, write_rows(tmp_path / "qa.csv", rows), tmp_path / "qa.jsonl", batch_size=2)
    assert [line["answer"] for line in read_answers(tmp_path / "qa.jsonl")] == qa(questions, contexts)
    rows = [{"question": q} for q in questions]
    out = tmp_path / "one.jsonl"
    bpcore.run_file(qa, write_rows(tmp_path / "questions.jsonl", rows), out, context=contexts[0])
    assert [line["answer"] for line in read_answers(out)] == qa(questions, contexts[0])


def test_image_paths_are_relative_to_the_data_file(tiny_plugin, seeded, tmp_path, image_files, monkeypatch):
    ic = bpcore.ImageClassification()
    names = ["red", "green", "blue", "red2"]
    rows = [{"id": name, "image": f"images/{name}.png"} for name in names]
    data = write_rows(tmp_path / "images.csv", rows)
    monkeypatch.chdir(tmp_path / "images")  # not the data file's folder: the paths must not depend on it
    bpcore.run_file(ic, data, tmp_path / "out.jsonl", labels=["warm", "cold"])
    expected = ic([str(image_files[name]) for name in names], ["warm", "cold"])
    assert [line["answer"] for line in read_answers(tmp_path / "out.jsonl")] == expected


def test_a_task_name_and_a_model_name(site, tmp_path):
    data = write_rows(tmp_path / "in.jsonl", text_rows())
    bpcore.run_file("text-vectorisation", data, tmp_path / "out.jsonl", model=SEEDED, progress=False)
    expected = bpcore.TextVectorisation(SEEDED)(TEXTS)
    assert [line["answer"] for line in read_answers(tmp_path / "out.jsonl")] == expected


def test_the_progress_bar_counts_rows_per_second_on_stderr_when_asked(tv, tmp_path, capsys):
    data = write_rows(tmp_path / "in.jsonl", text_rows())
    out = tmp_path / "out.jsonl"
    bpcore.run_file(tv, data, out, batch_size=4)  # stderr is no terminal here: no bar
    assert capsys.readouterr() == ("", "")
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:3]))
    bpcore.run_file(tv, data, out, batch_size=4, progress=True)  # going on after 3 rows
    printed, err = capsys.readouterr()
    assert printed == "" and f"{len(TEXTS)}/{len(TEXTS)}" in err and "rows/s" in err


# -- bad rows and bad settings -----------------------------------------------------------------------


def test_a_bad_row_names_row_and_column_and_keeps_the_rows_before_it(tv, tmp_path):
    rows = text_rows()
    rows[6]["text"] = 42  # row 7: the third of the second batch of 4
    data = write_rows(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.run_file(tv, data, out, batch_size=4)
    assert caught.value.field == "data"
    assert str(caught.value).startswith("data: row 7, column text: ")
    assert [line["row"] for line in read_answers(out)] == [1, 2, 3, 4, 5, 6]
    rows[6]["text"] = TEXTS[6]  # fixed: the run goes on from row 7
    write_rows(data, rows)
    summary = bpcore.run_file(tv, data, out, batch_size=4)
    assert summary.resumed == 6
    assert [line["answer"] for line in read_answers(out)] == tv(TEXTS)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "row 5 (line 6): not valid JSON"),
        ('["a list"]', "row 5 (line 6): expected an object"),
        ('{"id": "x"}', "row 5 (line 6): has no 'text'"),
        ('{"id": "x", "text": "a", "extra": 1}', "row 5 (line 6): has 'extra'"),
    ],
    ids=["bad-json", "not-an-object", "missing-column", "extra-column"],
)
def test_a_row_that_cannot_be_read_keeps_the_rows_before_it(tv, tmp_path, line, message):
    data = tmp_path / "in.jsonl"
    lines = [json.dumps(row) for row in text_rows()[:4]] + ["", line, json.dumps(text_rows()[5])]
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.run_file(tv, data, out, batch_size=3)
    assert message in str(caught.value)  # the blank line is no row
    assert [line["answer"] for line in read_answers(out)] == tv(TEXTS[:4])


def test_a_csv_row_is_named_with_its_line(tv, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text('id,text\na,one\nb,"two\nlines"\nc,three,extra\n')
    with pytest.raises(bpcore.InputError, match=r"line 5: 3 cells"):
        bpcore.run_file(tv, data, tmp_path / "out.jsonl")
    assert [line["answer"] for line in read_answers(tmp_path / "out.jsonl")] == tv(["one", "two\nlines"])


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        ([{"txt": "a"}], {}, "unknown column 'txt'; text-vectorisation rows hold text"),
        ([{"id": 1}], {}, "no column 'text'"),
        ([{"text": "a"}], {"text": "b"}, "give text as a column"),
        ([{"text": "a"}], {"top_k": 2}, "takes no option 'top_k'"),
        ([{"text": "a"}], {"return_tensor": True}, "takes no option 'return_tensor'"),
    ],
    ids=["misspelt", "missing", "item-as-option", "unknown-option", "tensor"],
)
def test_columns_and_options_are_checked(tv, tmp_path, rows, options, message):
    data = write_rows(tmp_path / "in.jsonl", rows)
    with pytest.raises(bpcore.InputError, match=message):
        bpcore.run_file(tv, data, tmp_path / "out.jsonl", **options)
    out = tmp_path / "out.jsonl"
    assert not out.exists() or out.read_text() == ""


def test_labels_in_a_row_must_be_a_list(tiny_plugin, tmp_path):
    data = write_rows(
        tmp_path / "in.jsonl", [{"text": "a", "labels": ["x", "y"]}, {"text": "b", "labels": "x"}]
    )
    with pytest.raises(bpcore.InputError, match="row 2, column labels: expected a list, got str"):
        bpcore.run_file(bpcore.TextClassification(), data, tmp_path / "out.jsonl")


@pytest.mark.parametrize(
    ("data", "out", "settings", "field"),
    [
        ("in.txt", "out.jsonl", {}, "data"),
        ("missing.jsonl", "out.jsonl", {}, "data"),
        ("in.jsonl", "out.csv", {}, "out"),
        ("in.jsonl", "in.jsonl", {}, "out"),
        ("in.jsonl", "out.jsonl", {"batch_size": 0}, "batch_size"),
        ("in.jsonl", "out.jsonl", {"id_column": "answer"}, "id_column"),
        ("in.jsonl", "out.jsonl", {"model": "tiny-text"}, "model"),
    ],
    ids=["ending", "missing", "out-not-jsonl", "out-is-data", "batch-size", "id-column", "task-and-model"],
)
def test_bad_settings_fail_before_anything_is_written(tv, tmp_path, data, out, settings, field):
    write_rows(tmp_path / "in.jsonl", text_rows())
    (tmp_path / "in.txt").write_text("text\n")
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.run_file(tv, tmp_path / data, tmp_path / out, **settings)
    assert caught.value.field == field
    assert not (tmp_path / out).exists() or out == "in.jsonl"


# -- resuming -------------------------------------------------------------------------------------


def test_a_torn_last_line_is_redone_and_no_row_is_written_twice(tv, tmp_path):
    data = write_rows(tmp_path / "in.jsonl", text_rows())
    out = tmp_path / "out.jsonl"
    bpcore.run_file(tv, data, out, batch_size=3)
    whole = out.read_bytes()
    lines = whole.splitlines(keepends=True)
    cut = len(b"".join(lines[:5])) + len(lines[5]) // 2  # five whole lines, half of the sixth
    out.write_bytes(whole[:cut])
    summary = bpcore.run_file(tv, data, out, batch_size=3)
    assert summary.resumed == 5 and summary.answered == len(TEXTS) - 5
    assert out.read_bytes() == whole


def test_a_finished_run_answers_nothing_again_and_overwrite_starts_again(tv, tmp_path):
    data = write_rows(tmp_path / "in.jsonl", text_rows())
    out = tmp_path / "out.jsonl"
    bpcore.run_file(tv, data, out)
    whole = out.read_bytes()
    again = bpcore.run_file(tv, data, out)
    assert (again.rows, again.answered) == (len(TEXTS), 0) and out.read_bytes() == whole
    out.write_bytes(whole[: len(whole) // 2])
    fresh = bpcore.run_file(tv, data, out, overwrite=True)
    assert (fresh.resumed, fresh.answered) == (0, len(TEXTS)) and out.read_bytes() == whole


@pytest.mark.parametrize(
    ("held", "message"),
    [
        (
            '{"row": 1, "id": "t0", "answer": []}\n{"row": 3, "id": "t2", "answer": []}\n',
            "line 2 of out.jsonl",
        ),
        ("some notes of mine\n", "line 1 of out.jsonl"),
        ('{"row": 1, "id": "other", "answer": []}\n', "has id 'other', but that row of the data has 't0'"),
        ("".join(f'{{"row": {n}, "answer": []}}\n' for n in range(1, 30)), "the data has only 11"),
    ],
    ids=["row-skipped", "not-answers", "other-ids", "more-rows-than-data"],
)
def test_an_output_holding_something_else_is_left_alone(tv, tmp_path, held, message):
    data = write_rows(tmp_path / "in.jsonl", text_rows())
    out = tmp_path / "out.jsonl"
    out.write_text(held)
    with pytest.raises(bpcore.InputError, match=message) as caught:
        bpcore.run_file(tv, data, out)
    assert caught.value.field == "out" and out.read_text() == held


def test_a_killed_run_goes_on_where_it_stopped(site, tmp_path):
    """``bpcore run --data`` killed (SIGKILL) mid-run, then run again: every row once, as direct calls."""
    texts = [f"row {i} says {'ab' * (i % 7)}" for i in range(20_000)]
    data = write_rows(tmp_path / "in.jsonl", text_rows(texts))
    out = tmp_path / "out.jsonl"
    command = _command(
        "text-vectorisation", "--data", data, "--out", out, "--model", SEEDED, "--batch-size", "1"
    )
    process = subprocess.Popen(command, env=_env(site), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.stat().st_size > 20_000:  # some dozens of rows in
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, err.decode()
    stopped_at = out.read_bytes().count(b"\n")
    assert 0 < stopped_at < len(texts)
    tv = bpcore.TextVectorisation(SEEDED)
    summary = bpcore.run_file(tv, data, out)
    assert summary.resumed == stopped_at and summary.rows == len(texts)
    lines = read_answers(out)
    assert [line["row"] for line in lines] == list(range(1, len(texts) + 1))
    assert [line["id"] for line in lines] == [f"t{i}" for i in range(len(texts))]
    assert [line["answer"] for line in lines] == tv(texts)


# -- the command line ---------------------------------------------------------------------------------


def _command(*args: Any) -> list[str]:
    return [str(Path(sys.executable).parent / "bpcore"), "run", *map(str, args)]


def _env(site: Path) -> dict[str, str]:
    return subprocess_env(
        [site], BPCORE_LOAD_PLUGINS="run_file_models", BPCORE_HOME=os.environ["BPCORE_HOME"]
    )


def test_bpcore_run_data_end_to_end(site, tmp_path):
    data = write_rows(tmp_path / "in.csv", text_rows())
    out = tmp_path / "answers" / "out.jsonl"  # its folder is made
    command = _command(
        "text-vectorisation", "--data", data, "--out", out, "--model", SEEDED, "--batch-size", "4"
    )
    done = subprocess.run(command, env=_env(site), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and f"answered {len(TEXTS)} rows" in done.stderr
    assert [line["answer"] for line in read_answers(out)] == bpcore.TextVectorisation(SEEDED)(TEXTS)
    assert [line["id"] for line in read_answers(out)] == [f"t{i}" for i in range(len(TEXTS))]


def test_bpcore_run_data_with_options_in_process(site, tmp_path, capsys):
    tc = bpcore.TextClassification(SEEDED)
    data = write_rows(tmp_path / "in.jsonl", text_rows())
    out = tmp_path / "out.jsonl"
    args = ["run", "text-classification", "--data", str(data), "--out", str(out), "--model", SEEDED]
    assert main([*args, "--labels", "a", "b", "c", "--top-k", "2", "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # --quiet: no bar, no summary
    assert [line["answer"] for line in read_answers(out)] == tc(TEXTS, ["a", "b", "c"], top_k=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "in.jsonl"], "--out: is required with --data"),
        (["--out", "out.jsonl", "hi"], "--out: needs --data"),
        (["hi", "--data", "in.jsonl", "--out", "out.jsonl"], "not both"),
        (
            ["--data", "in.jsonl", "--out", "out.jsonl", "--set", "text=x"],
            "give text with a column of --data",
        ),
        (["--data", "in.jsonl", "--out", "out.jsonl", "--batch-size", "0"], "batch_size"),
        (["--data", "nothing.jsonl", "--out", "out.jsonl"], "no file at"),
    ],
    ids=["no-out", "out-without-data", "inputs-and-data", "set-text", "batch-size", "no-data"],
)
def test_bpcore_run_data_usage_errors_are_one_line(tiny_plugin, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_rows(tmp_path / "in.jsonl", text_rows())
    assert main(["run", "text-vectorisation", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
