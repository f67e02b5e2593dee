"""Make a hub id resolve offline to a folder a test built: the real loading code, no network.

A model class whose default is a hub id (say ``T5`` loads ``google-t5/t5-small``) is tested by
placing a tiny model where the Hugging Face hub cache would keep that id, then running the
user's code unchanged with ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` pointing there — usually in
a fresh process (:func:`run_offline`), as the hub library reads its settings at import.

Example::

    cache = tmp_path / "hub"
    place_in_hub_cache(tiny_t5_folder(tmp_path / "t5"), "google-t5/t5-small", cache)
    run_offline("from bpcore.models import T5; print(T5().name)", cache)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# A revision id of the right shape; the cache layout only needs refs/main to name a snapshot.
_REVISION = "0" * 40


def place_in_hub_cache(folder: str | os.PathLike[str], repo_id: str, cache: str | os.PathLike[str]) -> Path:
    """Copy the files of ``folder`` into ``cache`` as the hub's snapshot of ``repo_id``; returns the snapshot."""
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / _REVISION
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(_REVISION)
    return snapshot


def offline_environment(cache: str | os.PathLike[str]) -> dict[str, str]:
    """This process's environment with the hub offline and its cache at ``cache``."""
    return {
        **os.environ,
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def run_offline(
    code: str, cache: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python with :func:`offline_environment`; raises with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=offline_environment(cache),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr[-4000:]}"
        )
    return done
