"""``bpcore serve`` as a user runs it: a real process on loopback that answers, then stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from core_helpers import TinyPlugin, subprocess_env
from serve_helpers import call
from test_core_cli import fake_plugins

import bpcore
import bpcore.saving

CLASSES_PLUGIN = (
    "import bpcore\n\n@bpcore.hookimpl\ndef register_model_classes(register):\n"
    '    register("TinyTextModel", "tiny_models:TinyTextModel")\n'
)


def _started(process: subprocess.Popen[str], timeout: float = 120) -> str:
    """The URL the server prints once it listens (it logs to stderr)."""
    deadline, seen = time.monotonic() + timeout, []
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise AssertionError("bpcore serve did not start:\n" + "".join(seen))


def test_bpcore_serve_answers_on_loopback_and_stops_on_sigterm(tmp_path: Path):
    torch.manual_seed(0)
    plugin = bpcore.register_plugin(TinyPlugin(), name="serve-cli-tiny")
    try:
        bpcore.save(bpcore.models.AutoModel.from_pretrained("tiny-text"), name="served-text")
    finally:
        bpcore.unregister_plugin(plugin)
    site = fake_plugins(tmp_path / "site", {"serve_cli_classes": CLASSES_PLUGIN})
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    command = [str(Path(sys.executable).parent / "bpcore"), "serve", "--model", "served-text", "--port", "0"]
    command += ["--api-key", "cli-key"]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=subprocess_env([site]),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = _started(process)
        assert call(f"{url}/readyz")[1]["loaded"] == ["served-text"]
        status, body, _ = call(f"{url}/v1/text-vectorisation", "POST", {"text": "a cat"}, "cli-key")
        assert status == 200 and body["model"] == "served-text"
        direct = bpcore.TextVectorisation("served-text")("a cat")
        assert torch.allclose(torch.tensor(body["answer"]), torch.tensor(direct), atol=1e-6)
        upload = [
            str(Path(sys.executable).parent / "bpcore"),
            "upload",
            str(bpcore.saving.home() / "served-text"),
        ]
        upload += ["--name", "uploaded-text", "--url", url, "--api-key", "cli-key"]
        done = subprocess.run(upload, env=subprocess_env([site]), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "uploaded-text" in done.stdout, done.stderr
        status, body, _ = call(
            f"{url}/v1/text-vectorisation", "POST", {"model": "uploaded-text", "text": "a cat"}, "cli-key"
        )
        assert status == 200 and body["answer"] == [pytest.approx(x, abs=1e-6) for x in direct]
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
        # uvicorn finishes requests in flight and shuts the app down, then ends by the signal it got.
        assert process.returncode in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in rest
    finally:
        if process.poll() is None:
            process.kill()
    assert os.listdir(workdir) == []  # nothing written into the working folder


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_leaves_no_semaphore_behind(tmp_path: Path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).parent / "bpcore"), "serve", "--workers", "2"]
    command += ["--model", "all-minilm-l6-v2", "--port", str(port)]
    # Its own process group, as a terminal's Ctrl-C reaches every process of the foreground group.
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=subprocess_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if call(f"{url}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        answers = [call(f"{url}/v1/text-vectorisation", "POST", {"text": f"text {i}"}) for i in range(6)]
        assert [status for status, _, _ in answers] == [200] * 6  # both workers ran the model
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "Finished server process" in stderr
    assert "leaked semaphore" not in stderr, stderr[-2000:]
