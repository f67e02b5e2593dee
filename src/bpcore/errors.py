"""The exceptions bpcore raises. Catch :class:`BpcoreError` to catch them all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BpcoreError(Exception):
    """Base class of every error bpcore raises on purpose."""


class InputError(BpcoreError, ValueError):
    """Task input or finetuning params that do not fit the task's schema.

    ``problems`` lists each problem as ``(field, message)``, where ``field`` is a path
    such as ``params.texts[2]``.

    Example::

        try:
            tv.finetune({"texts1": ["a"], "texts2": []})
        except bpcore.InputError as error:
            print(error.problems)
    """

    def __init__(self, problems: Sequence[tuple[str, str]] | str, field: str | None = None):
        if isinstance(problems, str):
            problems = [(field or "input", problems)]
        self.problems: list[tuple[str, str]] = list(problems)
        self.field = self.problems[0][0] if self.problems else field
        lines = [f"{where}: {message}" for where, message in self.problems]
        super().__init__("; ".join(lines) if len(lines) < 2 else "\n  " + "\n  ".join(lines))


class InputTypeError(InputError, TypeError):
    """An input of the wrong type (also a :class:`TypeError`)."""


class ModelNotFoundError(BpcoreError, LookupError):
    """No registered model, alias or saved model has that name."""


class PluginNotInstalledError(ModelNotFoundError):
    """A task has no model because the plugin that provides one is not installed."""


class TaskNotSupportedError(BpcoreError, ValueError):
    """The model does not implement (or cannot finetune) the requested task."""


class ModelLoadError(BpcoreError, OSError):
    """A model's files or weights could not be loaded (offline hub id, missing file, bad folder)."""

    @classmethod
    def for_path(
        cls, label: str, path: str, error: BaseException, *, kind: str, needs: str, save_with: str
    ) -> ModelLoadError:
        """The error for a ``path`` that is neither a loadable local folder nor a hub id that downloads.

        ``label`` is the model as the user named it, ``error`` what the loading library raised;
        ``kind`` names what the folder should hold, ``needs`` its files, ``save_with`` the call
        that writes such a folder where the hub is reachable.
        """
        import os

        if os.path.isdir(path):
            why = f"the folder {path} does not hold a loadable {kind}"
            hint = f"check the folder: it needs {needs}"
        else:
            why = f"{path!r} is not a local folder, and it could not be downloaded from the Hugging Face hub (offline?)"
            hint = f"pass the path of a local folder instead, written with {save_with} where the hub is reachable"
        return cls(f"cannot load model {label!r}: {why}; {hint} ({type(error).__name__}: {error})")


class UnsafeLoadError(BpcoreError, PermissionError):
    """Loading would unpickle data, which can run code: pass ``trust_pickle=True`` to allow it."""


class ModelProtocolError(BpcoreError, RuntimeError):
    """A model broke the model protocol (e.g. returned the wrong number of answers, or a tensor
    where JSON was due); the message names the model and its plugin."""


class TrainingError(BpcoreError, RuntimeError):
    """Finetuning could not go on (for example, the loss became NaN).

    ``message`` says why it stopped; ``history`` holds the :class:`~bpcore.training.History` of
    the run so far (the epochs that finished before it stopped), or None when it stopped before
    training began. Other bpcore errors raised during a run (e.g. an image that fails to decode)
    carry it too.
    """

    def __init__(self, message: str, history: Any = None):
        super().__init__(message)
        self.history = history


class AuthenticationError(BpcoreError, PermissionError):
    """A bpcore server refused the API key (HTTP 401), or upload is off on it (403)."""


class ServerError(BpcoreError, ConnectionError):
    """A bpcore server could not answer: unreachable, overloaded (``retry_after`` seconds) or failing.

    ``message`` says what failed; ``status`` is the HTTP status (None when the server was not
    reached).
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
