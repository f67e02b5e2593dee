"""Loading and saving the bundled MiniLM prints no third-party progress bars unless BPCORE_VERBOSE asks."""

from __future__ import annotations

import pytest

import bpcore
from bp_st import STModel


@pytest.mark.parametrize("verbose", ["", "1"])
def test_loading_and_saving_print_bars_only_when_verbose(minilm_path, tmp_path, capfd, monkeypatch, verbose):
    monkeypatch.setenv("BPCORE_VERBOSE", verbose)
    capfd.readouterr()  # what building the fixture printed
    model = STModel(str(minilm_path))
    bpcore.load(bpcore.save(model, "quiet-minilm", path=tmp_path / "saved"))
    err = capfd.readouterr().err
    assert ("Loading weights" in err) == bool(verbose), err[-500:]
