"""Checks a plugin's tests run in a fresh interpreter: what listing models imports, and offline load errors.

Both need a new process: a module already imported in the test session cannot be un-imported,
and huggingface_hub reads ``HF_HUB_OFFLINE`` once, when it is first imported.

Example::

    from bpcore.testing.fresh_process import imported_by_listing, load_errors_offline

    assert imported_by_listing("bp_effnet", ["torch", "timm"]) == []
    [error] = load_errors_offline(['bpcore.ImageClassification("efficientnet-b0")'])
    assert error.startswith("ModelLoadError") and "efficientnet-b0" in error
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

_LISTING = """
import importlib, json, sys
import bpcore
from bpcore.models import AutoModel
importlib.import_module({package!r})
rows = AutoModel.list_models()
print(json.dumps({{"listed": len(rows), "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""

_LOADING = """
import json
import bpcore
import bpcore.models
outcomes = []
for expression in {expressions!r}:
    try:
        eval(expression)
    except bpcore.BpcoreError as error:
        outcomes.append(type(error).__name__ + ": " + str(error).replace("\\n", " "))
    else:
        outcomes.append("loaded")
print(json.dumps(outcomes))
"""


def _run(code: str, **env: str) -> object:
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise AssertionError(f"the fresh interpreter failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def imported_by_listing(package: str, heavy: Sequence[str]) -> list[str]:
    """Which of ``heavy`` get imported by ``import bpcore``, ``import package`` and listing every model."""
    outcome = _run(_LISTING.format(package=package, heavy=list(heavy)))
    assert isinstance(outcome, dict) and outcome["listed"] > 0, "no model was listed"
    return list(outcome["heavy"])


def load_errors_offline(expressions: Sequence[str]) -> list[str]:
    """Evaluate each expression (``'bpcore.QA("t5-small")'``) offline: ``"ModelLoadError: ..."`` or ``"loaded"``."""
    outcome = _run(_LOADING.format(expressions=list(expressions)), HF_HUB_OFFLINE="1")
    assert isinstance(outcome, list)
    return [str(line) for line in outcome]
