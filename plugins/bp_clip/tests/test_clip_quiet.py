"""An offline hub tag fails with bpcore's own error, not after open_clip's ERROR log line (unless verbose)."""

from __future__ import annotations

import pytest

import bpcore


@pytest.mark.parametrize("verbose", ["", "1"])
def test_an_offline_tag_logs_nothing_unless_verbose(caplog, monkeypatch, verbose):
    monkeypatch.setenv("BPCORE_VERBOSE", verbose)
    with pytest.raises(bpcore.ModelLoadError, match="could not be downloaded"):
        bpcore.ImageVectorisation("clip")
    logged = any("Failed to download" in record.getMessage() for record in caplog.records)
    assert logged == bool(verbose)
