"""transformers' progress bars stay out of a load or save unless BPCORE_VERBOSE asks for them."""

from __future__ import annotations

import pytest

import bpcore
from bp_hf import HFSeq2SeqTGModel


@pytest.mark.parametrize("verbose", ["", "1"])
def test_loading_and_saving_print_bars_only_when_verbose(t5_folder, tmp_path, capfd, monkeypatch, verbose):
    monkeypatch.setenv("BPCORE_VERBOSE", verbose)
    capfd.readouterr()  # what building the fixture printed
    model = HFSeq2SeqTGModel(str(t5_folder))
    bpcore.load(bpcore.save(model, "quiet-t5", path=tmp_path / "saved"))
    err = capfd.readouterr().err
    shown = "Loading weights" in err and "Writing model shards" in err
    assert shown == bool(verbose), err[-500:]
