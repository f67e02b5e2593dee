"""Helpers for a plugin's own tests of saved folders: edit one, watch what a load opens, read a refusal.

Example::

    from bpcore.testing.folders import edit_json, reason, watching

    edit_json(saved / "config.json", lambda config: config["model"].update(folder="../../elsewhere"))
    with watching(tmp_path / "elsewhere") as opened, pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved)
    assert opened == [] and "leaves the saved folder" in reason(refused.value, tmp_path)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The kit's own watch: Python's audit events, and access times for native reads.
from bpcore.testing.folder_checks import watching_opens as watching

__all__ = ["edit_json", "edit_model_config", "reason", "watching"]

# The kit's own watch (Python's audit events, and access times for native reads).


def reason(error: BaseException, *folders: Path) -> str:
    """``error``'s message with ``folders`` written ``<folder>``: assert on the reason, not on a path."""
    text = str(error)
    for folder in folders:
        text = text.replace(str(folder), "<folder>")
    return text


def edit_json(path: Path, change: Callable[[Any], None]) -> None:
    """Change a JSON file in place: ``change`` edits the parsed data."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def edit_model_config(folder: Path, **changes: Any) -> None:
    """Change the ``model`` section of a saved folder's config.json, as a hand-edited folder would."""
    edit_json(Path(folder) / "config.json", lambda config: config["model"].update(changes))
