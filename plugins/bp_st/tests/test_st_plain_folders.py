"""A plain ``SentenceTransformer.save`` folder is a model: a task given its path answers as STModel on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import bpcore
from bp_st.model import STModel

TEXTS = ["iPhone 12 128GB", "Apple iPhone 12, 128 GB", "I went for a swim in the lake this morning"]


@pytest.fixture(scope="module")
def st_folder(minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """all-MiniLM-L6-v2 written the way Sentence Transformers writes a model."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path_factory.mktemp("st") / "my-minilm"
    SentenceTransformer(str(minilm_path), device="cpu").save(str(folder), create_model_card=False)
    return folder


def test_a_sentence_transformers_folder_vectorises_as_st_model(st_folder):
    tv = bpcore.TextVectorisation(str(st_folder))
    assert type(tv.model) is STModel
    assert tv.model.name == "my-minilm"
    explicit = bpcore.TextVectorisation(STModel(st_folder))
    assert torch.allclose(torch.tensor(tv(TEXTS)), torch.tensor(explicit(TEXTS)), atol=1e-6)


def test_the_folders_own_length_limit_is_kept(minilm_path, st_folder):
    from sentence_transformers import SentenceTransformer

    limit = SentenceTransformer(str(st_folder), device="cpu").max_seq_length
    assert limit == 256  # all-MiniLM-L6-v2's, below its encoder's 512 positions
    assert bpcore.load(st_folder).max_length == limit


def test_a_module_outside_sentence_transformers_is_refused(st_folder, tmp_path):
    import shutil

    folder = Path(shutil.copytree(st_folder, tmp_path / "edited"))
    modules = json.loads((folder / "modules.json").read_text())
    modules[-1]["type"] = "os.system"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(bpcore.ModelLoadError, match="not a Sentence Transformers class"):
        bpcore.TextVectorisation(str(folder))


def test_a_sentence_transformers_folder_serves_text_vectorisation_only(st_folder):
    with pytest.raises(bpcore.TaskNotSupportedError, match="not 'text-classification'"):
        bpcore.TextClassification(str(st_folder))
