"""``bpcore.ray``: a task over a Ray Dataset, one model per actor, answers equal to direct calls.

The batch handling is checked in this process (NumPy and pandas batches, as Ray hands them,
with a seeded tiny model); then on a local Ray instance (``num_cpus=2``; its start and the
actors' imports take most of the time), MiniLM vectorises 2,000 rows on two actors.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray.data", reason="the Ray Data tests need bpcore[ray] (pip install 'ray[data]')")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from test_core_cli import fake_plugins  # noqa: E402
from test_run_file import SEEDED, SEEDED_PLUGIN  # noqa: E402

import bpcore  # noqa: E402
import bpcore.ray  # noqa: E402
from bpcore.plugins import manager as plugins  # noqa: E402

MINILM = "all-minilm-l6-v2"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
WORDS = "apple river stone quick violet seven under market planet silver cloud paper".split()


def sentences(count: int) -> list[str]:
    """Distinct sentences of 3 to 14 words (so batches mix lengths)."""
    return [
        " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(3 + i % 12)) + f" #{i}"
        for i in range(count)
    ]


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The seeded tiny model registered in this process, as the workers' plugin site registers it."""
    site = fake_plugins(tmp_path / "site", {"run_file_models": SEEDED_PLUGIN})
    monkeypatch.syspath_prepend(str(site))
    import run_file_models

    name = bpcore.register_plugin(run_file_models, name="ray-data-models")
    try:
        yield
    finally:
        bpcore.unregister_plugin(name)
        sys.modules.pop("run_file_models", None)


# -- without Ray ------------------------------------------------------------------------------------


def test_importing_bpcore_ray_imports_no_ray_and_no_torch():
    code = "import sys, bpcore, bpcore.ray\nprint(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'torch'}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_numpy_and_pandas_batches_get_an_answer_column(models):
    texts = sentences(7)
    labels = [["cat", "dog"], ["red", "blue", "green"]] * 3 + [["x", "y"]]
    tv = bpcore.TextVectorisation(SEEDED)
    tc = bpcore.TextClassification(SEEDED)
    # As Ray hands a batch: strings as a NumPy array, a list column as an object array of arrays.
    label_cells = np.empty(len(labels), dtype=object)
    label_cells[:] = [np.array(own) for own in labels]
    batch = {"id": np.arange(7), "text": np.array(texts), "labels": label_cells}
    vectors = bpcore.ray.Predictor("text-vectorisation", SEEDED)({"id": batch["id"], "text": batch["text"]})
    assert vectors["answer"].shape == (7, tv.model.dim) and list(vectors["id"]) == list(range(7))
    assert vectors["answer"].tolist() == tv(texts)
    classes = bpcore.ray.Predictor("text-classification", SEEDED, top_k=1, answer_column="best")(batch)
    assert list(classes["best"]) == tc(texts, labels, top_k=1)
    frame = pd.DataFrame({"id": range(7), "text": texts})
    shared = bpcore.ray.Predictor("text-classification", SEEDED, labels=["a", "b"])(frame)
    assert list(shared.columns) == ["id", "text", "answer"] and "answer" not in frame.columns
    assert shared["answer"].tolist() == tc(texts, ["a", "b"])


def test_a_bad_row_of_a_batch_is_named(models):
    predictor = bpcore.ray.Predictor("text-vectorisation", SEEDED)
    with pytest.raises(bpcore.InputError, match=r"batch row 2, column text: expected a string"):
        predictor({"text": np.array(["a", "b", None, "d"], dtype=object)})
    with pytest.raises(bpcore.InputError, match="no column 'text'"):
        predictor({"txt": np.array(["a"])})
    with pytest.raises(bpcore.InputError, match="takes no option 'top_k'"):
        bpcore.ray.Predictor("text-vectorisation", SEEDED, top_k=3)


# -- on a local Ray instance ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray with 2 CPUs, whose workers load bp-st's bundled MiniLM offline."""
    import ray

    env = {**OFFLINE, "BPCORE_LOAD_PLUGINS": "st", "OMP_NUM_THREADS": "1"}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": env},
        _system_config={"enable_worker_prestart": False, "prestart_worker_first_driver": False},
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


def test_minilm_vectorises_2000_rows_on_two_actors_as_direct_calls(local_ray, monkeypatch):
    import ray

    texts = sentences(2000)
    dataset = ray.data.from_items([{"id": i, "text": text} for i, text in enumerate(texts)])
    answered = bpcore.ray.map_task(dataset, "text-vectorisation", MINILM, actors=2, batch_size=128)
    rows = answered.take_all()
    assert sorted(row["id"] for row in rows) == list(range(2000))
    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", "st")
    plugins.reset()
    direct = np.asarray(bpcore.TextVectorisation(MINILM)(texts))
    vectors = np.stack([np.asarray(row["answer"]) for row in sorted(rows, key=lambda row: row["id"])])
    assert all(row["text"] == texts[row["id"]] for row in rows)
    # Other batches than the direct call's (padding to other lengths): equal to float32 rounding.
    assert vectors.shape == direct.shape == (2000, 384)
    assert np.abs(vectors - direct).max() < 1e-5
