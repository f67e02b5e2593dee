"""bp-trigram's saved folders pass the kit's folder rules; a size it uses only at call time is bounded."""

import json
from pathlib import Path

import pytest

import bpcore
from bpcore.testing import Candidate
from bpcore.testing.folder_checks import FOLDER_STATS, folder_checks


def text_model():
    from bp_trigram import TrigramTextModel

    return TrigramTextModel(dim=16, buckets=512, name="trigram-sized")


def image_model():
    from bp_trigram import TinyConvModel

    return TinyConvModel(dim=16, image_size=24, name="conv-sized")


@pytest.mark.parametrize(
    "candidate",
    [
        Candidate(text_model, tasks=["text-vectorisation", "text-classification"], name="trigram-sized"),
        Candidate(image_model, tasks=["image-vectorisation"], name="conv-sized"),
        Candidate.registered("trigram-text"),
    ],
    ids=lambda candidate: candidate.id,
)
def test_the_saved_folders_pass_the_folder_rules(candidate):
    FOLDER_STATS.clear()
    for check in folder_checks(candidate):
        check(candidate)
    assert FOLDER_STATS["saved-paths-inside"] and FOLDER_STATS["saved-numbers-bounded"]


def test_a_saved_image_size_beyond_the_bound_is_refused_at_load(tmp_path):
    folder = Path(bpcore.save(image_model(), path=tmp_path / "conv"))
    config = json.loads((folder / "config.json").read_text())
    config["model"]["init_arguments"]["image_size"] = 10**9
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(bpcore.ModelLoadError, match="image_size: must be an integer from 4 to 1024"):
        bpcore.load(folder)
