"""Third-party log lines and progress bars are silenced during loads unless BPCORE_VERBOSE is set."""

from __future__ import annotations

import logging
import threading

from bpcore.plugins import quiet


class Bar:
    """A library's progress-bar switch, as transformers exposes one."""

    def __init__(self) -> None:
        self.on = True

    def switch(self):
        return (lambda: self.on), (lambda: setattr(self, "on", False)), (lambda: setattr(self, "on", True))


def test_log_lines_and_bars_are_silenced_then_restored(caplog):
    bar = Bar()
    with quiet(bar.switch()):
        logging.error("Failed to download weights")  # what open_clip prints on the root logger
        assert not bar.on
    assert bar.on
    logging.error("after the load")
    assert [record.getMessage() for record in caplog.records] == ["after the load"]


def test_verbose_shows_everything(caplog, monkeypatch):
    monkeypatch.setenv("BPCORE_VERBOSE", "1")
    bar = Bar()
    with quiet(bar.switch()):
        logging.error("shown when verbose")
        assert bar.on
    assert [record.getMessage() for record in caplog.records] == ["shown when verbose"]


def test_the_last_of_overlapping_loads_restores(caplog):
    bar = Bar()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def second() -> None:
        first_in.wait()
        with quiet(bar.switch()):
            second_in.set()
            first_out.wait()
            seen["bar during second"] = bar.on

    thread = threading.Thread(target=second)
    thread.start()
    with quiet(bar.switch()):
        first_in.set()
        second_in.wait()
    first_out.set()
    thread.join(timeout=10)
    assert seen == {"bar during second": False} and bar.on
    logging.error("restored")
    assert [record.getMessage() for record in caplog.records] == ["restored"]
