"""Finetuning data files: JSON Lines, CSV and JSON read into a task's params, and every way they can be wrong."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from PIL import Image

import bpcore
from bpcore.datafiles import DataParams, choose_variant, column_kinds, locate, read_params
from bpcore.schemas import TextClassificationParams, structure


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_jsonl_rows_become_columns(tmp_path):
    path = write(
        tmp_path,
        "train.jsonl",
        jsonl({"texts": "the senate passed a bill", "labels": "politics"})
        + "   \n"  # blank lines are no rows
        + jsonl({"texts": "a comet came close", "labels": "science"}),
    )
    params = read_params(path, task="text-classification")
    assert params == {
        "texts": ["the senate passed a bill", "a comet came close"],
        "labels": ["politics", "science"],
    }
    assert isinstance(params, dict) and params.rows == ["line 1", "line 3"]
    # Values are passed on as written: the schema, not the reader, decides what a label may be.
    numbers = write(tmp_path, "numbers.ndjson", jsonl({"texts": "a", "labels": 1}))
    assert read_params(numbers) == {"texts": ["a"], "labels": [1]}


def test_csv_cells_become_what_the_schema_wants(tmp_path):
    pairs = write(
        tmp_path,
        "pairs.csv",
        'texts1,texts2,similarity_scores\n"iPhone 12, 128GB",Apple iPhone 12,0.9\nmug,hat,-.25\nx,y,1e-1\n',
    )
    assert read_params(pairs, task="text-vectorisation") == {
        "texts1": ["iPhone 12, 128GB", "mug", "x"],
        "texts2": ["Apple iPhone 12", "hat", "y"],
        "similarity_scores": [0.9, -0.25, 0.1],
    }
    groups = write(tmp_path, "groups.csv", "texts,groups\ncrowbar,0\nsteel crowbar,0\nmug,mugs\n")
    assert read_params(groups, task="text-vectorisation")["groups"] == [0, 0, "mugs"]

    # A label stays the text the user wrote ("1", "[draft]"); a JSON list is a list (multi-label).
    labels = write(
        tmp_path,
        "labels.csv",
        'texts,labels\nfirst,1\nsecond,[draft]\nthird,"[""politics"", ""science""]"\n[not json] text,x\n',
    )
    params = read_params(labels, task="text-classification")
    assert params["labels"] == ["1", "[draft]", ["politics", "science"], "x"]
    assert params["texts"][3] == "[not json] text"

    qa = write(
        tmp_path,
        "qa.csv",
        "questions,answers,contexts,prev_qas\n"
        "What's Backprop?,A library,Backprop is a library.,\n"
        'What language?,Python,It is in Python.,"[[""What\'s Backprop?"", ""A library""]]"\n',
    )
    assert read_params(qa, task="qa")["prev_qas"] == [[], [["What's Backprop?", "A library"]]]
    # Without a task, every task's schemas say what a column holds.
    assert read_params(pairs)["similarity_scores"] == [0.9, -0.25, 0.1]
    assert column_kinds()["images"] == {"image"}


def test_json_rows_or_columns(tmp_path):
    rows = write(tmp_path, "rows.json", json.dumps([{"input_text": "I am glad", "output_text": "joy"}] * 2))
    params = read_params(rows, task="emotion")
    assert params == {"input_text": ["I am glad"] * 2, "output_text": ["joy"] * 2}
    assert params.rows == ["row 1", "row 2"]
    columns = write(tmp_path, "columns.json", json.dumps({"texts": ["a", "b"], "groups": [0, 0]}))
    params = read_params(columns, task="text-vectorisation")
    assert params == {"texts": ["a", "b"], "groups": [0, 0]} and params.rows is None


def test_image_paths_are_relative_to_the_data_file(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    (folder / "pics").mkdir(parents=True)
    Image.new("RGB", (4, 4), (200, 0, 0)).save(folder / "pics" / "red.png")
    elsewhere = tmp_path / "elsewhere.png"
    Image.new("RGB", (4, 4), (0, 0, 200)).save(elsewhere)
    encoded = base64.b64encode(elsewhere.read_bytes()).decode()
    path = write(
        folder,
        "images.csv",
        f'images,labels\npics/red.png,red\n{elsewhere},blue\n{encoded},blue\n"data:image/png;base64,{encoded}",blue\n',
    )
    monkeypatch.chdir(tmp_path)  # not the data file's folder
    params = read_params(path, task="image-classification")
    assert params["images"] == [
        str(folder / "pics" / "red.png"),
        str(elsewhere),
        encoded,
        f"data:image/png;base64,{encoded}",
    ]

    missing = write(
        folder,
        "missing.jsonl",
        jsonl({"imgs1": "pics/red.png", "imgs2": "pics/gone.png", "similarity_scores": 1.0}),
    )
    with pytest.raises(bpcore.InputError) as raised:
        read_params(missing, task="image-vectorisation")
    message = str(raised.value)
    assert "line 1, column imgs2: no image file at 'pics/gone.png'" in message and str(folder) in message
    for name in ("x" * 5000 + ".png", "~nosuchuser/a.png", "a\u0000b.png", "not base64!"):
        strange = write(folder, "strange.jsonl", jsonl({"images": name, "groups": 0}))
        with pytest.raises(bpcore.InputError, match="line 1, column images: no image file at"):
            read_params(strange, task="image-vectorisation")


#: (file name, content, task, what the error says)
BAD_FILES = [
    (
        "bad.jsonl",
        '{"texts": "a", "labels": "x"}\n{"texts": "b" "labels": "y"}\n',
        None,
        "line 2: not valid JSON",
    ),
    ("list.jsonl", '["a", "x"]\n', None, "line 1: expected an object with the params keys, got list"),
    (
        "twice.jsonl",
        '{"texts": "a", "texts": "b"}\n',
        None,
        "line 1: not valid JSON (key 'texts' appears twice)",
    ),
    ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", None, "line 1: "),
    ("missing.jsonl", jsonl({"texts": "a", "labels": "x"}, {"texts": "b"}), None, "line 2: has no 'labels'"),
    (
        "extra.jsonl",
        jsonl({"texts": "a"}, {"texts": "b", "labels": "y"}),
        None,
        "line 2: has 'labels', which line 1 has not",
    ),
    (
        "unknown.jsonl",
        jsonl({"texts": "a", "label": "x"}),
        "text-classification",
        "line 1: unknown column 'label'; text-classification takes texts, labels",
    ),
    ("nolabels.csv", "texts\na\n", "text-classification", "line 1: no column 'labels'"),
    (
        "pairs.csv",
        "texts1,texts2\na,b\n",
        "text-vectorisation",
        "no column 'similarity_scores'; text-vectorisation needs texts1, texts2, similarity_scores (cosine_similarity) or texts, groups (triplet)",
    ),
    ("empty.jsonl", "", None, "empty.jsonl has no rows"),
    ("blank.csv", "\n\n", None, "blank.csv has no rows"),
    ("header.csv", "texts,labels\n", None, "header.csv has no rows"),
    ("empty.json", "  ", None, "empty.json is empty"),
    ("emptyobject.jsonl", "{}\n", None, "line 1: an empty object"),
    (
        "data.txt",
        "texts,labels\n",
        None,
        "'data.txt' has an ending bpcore does not read; use .jsonl, .ndjson, .csv, .json",
    ),
    ("ragged.csv", "texts,labels\na,x\nb,y,z\n", None, "line 3: 3 cells, but the header has 2 columns"),
    ("dupe.csv", "texts,texts\na,b\n", None, "line 1: column 'texts' appears twice"),
    ("noname.csv", "texts,\na,b\n", None, "line 1: column 2 of the header has no name"),
    (
        "score.csv",
        "texts1,texts2,similarity_scores\na,b,high\n",
        None,
        "line 2, column similarity_scores: expected a number, got 'high'",
    ),
    (
        "prev.csv",
        "questions,answers,contexts,prev_qas\nq,a,c,[[oops\n",
        "qa",
        "line 2, column prev_qas: not a valid JSON list",
    ),
    (
        "prevtext.csv",
        "questions,answers,contexts,prev_qas\nq,a,c,none\n",
        "qa",
        "line 2, column prev_qas: expected a JSON list",
    ),
    ("quote.csv", 'texts,labels\n"a"b,x\n', None, "line 2: not valid CSV"),
    (
        "latin1.jsonl",
        b'{"texts": "a", "labels": "x"}\n{"texts": "caf\xe9", "labels": "x"}\n',
        None,
        "line 2: not UTF-8 text",
    ),
    ("scalar.json", "3", None, "expected a list of rows or an object of columns, got int"),
    (
        "columns.json",
        '{"texts": ["a", "b"], "labels": ["x"]}',
        None,
        "the columns differ in length (texts 2, labels 1)",
    ),
    ("notlist.json", '{"texts": "a", "labels": "x"}', None, "column texts: expected a list"),
    ("rows.json", '[{"texts": "a", "labels": "x"}, 3]', None, "row 2: expected an object"),
]


@pytest.mark.parametrize(
    ("name", "content", "task", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES]
)
def test_bad_files_are_input_errors_naming_the_line_and_column(tmp_path, name, content, task, message):
    path = write(tmp_path, name, content)
    with pytest.raises(bpcore.InputError) as raised:
        read_params(path, task=task)
    assert raised.value.field == "data"
    assert message in str(raised.value)


def test_a_missing_file_a_folder_and_an_unknown_task(tmp_path):
    with pytest.raises(bpcore.InputError, match="no file at"):
        read_params(tmp_path / "nothing.jsonl")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(bpcore.InputError, match="is a folder"):
        read_params(tmp_path / "folder.csv")
    path = write(tmp_path, "ok.jsonl", jsonl({"texts": "a"}))
    with pytest.raises(bpcore.InputError, match="'telepathy' is not a task"):
        read_params(path, task="telepathy")
    for strange in ("a\u0000b.csv", "x" * 5000 + ".csv", "~nosuchuser/train.jsonl"):
        with pytest.raises(bpcore.InputError):
            read_params(strange)
    with pytest.raises(bpcore.InputTypeError):
        read_params(3)


def test_garbage_is_only_ever_an_input_error(tmp_path):
    generator = random.Random(0)
    alphabet = b'{}[]",:\n\r 0123456789.-eE\\abc\xff\x00tru'
    for index in range(200):
        raw = bytes(generator.choice(alphabet) for _ in range(generator.randrange(0, 60)))
        for suffix in (".jsonl", ".csv", ".json"):
            path = write(tmp_path, f"garbage{index}{suffix}", raw)
            try:
                read_params(
                    path, task=generator.choice([None, "qa", "text-vectorisation", "image-classification"])
                )
            except bpcore.InputError:
                pass


def test_choose_variant_follows_the_columns(tmp_path):
    triplets = read_params(
        write(tmp_path, "t.csv", "texts,groups\na,0\nb,0\nc,1\n"), task="text-vectorisation"
    )
    assert choose_variant("text-vectorisation", triplets) == "triplet"
    pairs = read_params(
        write(tmp_path, "p.csv", "texts1,texts2,similarity_scores\na,b,1\n"), task="text-vectorisation"
    )
    assert choose_variant("text-vectorisation", pairs) == "cosine_similarity"
    single = read_params(
        write(tmp_path, "s.jsonl", jsonl({"texts": "a", "labels": "x"})), task="text-classification"
    )
    assert choose_variant("text-classification", single) == "single_label"
    multi = read_params(
        write(tmp_path, "m.jsonl", jsonl({"texts": "a", "labels": ["x", "y"]})), task="text-classification"
    )
    assert choose_variant("text-classification", multi) == "multi_label"
    assert choose_variant("emotion", {"input_text": ["a"], "output_text": ["b"]}) is None
    with pytest.raises(
        bpcore.InputError, match="do not fit variant 'cosine_similarity', which takes texts1, texts2"
    ):
        choose_variant("text-vectorisation", triplets, "cosine_similarity")


def test_locate_points_schema_errors_at_the_file(tmp_path):
    rows = [{"texts": f"text {i}", "labels": "x"} for i in range(10)]
    rows[2]["texts"] = "   "
    for row in rows[4:]:
        row["labels"] = 7
    params = read_params(write(tmp_path, "train.jsonl", "\n" + jsonl(*rows)), task="text-classification")
    with pytest.raises(bpcore.InputError) as raised:
        structure(params, TextClassificationParams, root="params")
    located = locate(raised.value, params)
    assert isinstance(located, bpcore.InputTypeError)
    assert located.problems[0] == ("data", "line 6, column labels: expected a string, got int")
    assert located.problems[-1] == ("data", "and 1 more problem")
    with pytest.raises(bpcore.InputError) as raised:
        structure({**params, "labels": ["x"] * 10}, TextClassificationParams, root="params")
    assert str(locate(raised.value, params)) == "data: line 4, column texts: is empty"
    # A dict that did not come from a file, and errors of other fields, stay as they are.
    assert locate(raised.value, {"texts": []}) is raised.value
    assert isinstance(params, DataParams)
