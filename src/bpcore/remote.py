"""Tasks that run on a bpcore server (``local=False``), and uploading models to one.

The spec's tasks took ``local=False, api_key=...`` to run on Backprop's hosted service; here they
run on a server you start yourself (``bpcore serve``). A remote task checks its input with the same
schemas as a local one, sends it, and returns what a local call returns; the server's errors come
back as bpcore's own exceptions. Only the standard library speaks HTTP here, and no torch is
imported unless ``return_tensor=True`` asks for a tensor.

Example::

    tv = bpcore.TextVectorisation("my-model", local=False, api_key="abc", url="http://127.0.0.1:8000")
    tv("A sentence")     # the vector the server's model gives
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpcore import errors
from bpcore.errors import AuthenticationError, InputTypeError, ServerError

if TYPE_CHECKING:
    from bpcore.calls import PreparedCall

DEFAULT_URL = "http://127.0.0.1:8000"
#: Seconds to wait for an answer: the first call of a model waits for it to load on the server.
DEFAULT_TIMEOUT = 600.0


def server_url(url: str | None = None) -> str:
    """``url``, else ``$BPCORE_URL``, else ``http://127.0.0.1:8000``, without a trailing slash."""
    chosen = url or os.environ.get("BPCORE_URL") or DEFAULT_URL
    if not isinstance(chosen, str) or urllib.parse.urlsplit(chosen).scheme not in ("http", "https"):
        raise InputTypeError(f"expected an http(s) URL, got {chosen!r:.200}", field="url")
    return chosen.rstrip("/")


def server_key(api_key: str | None = None) -> str | None:
    """``api_key``, else ``$BPCORE_API_KEY`` (None: send no key)."""
    return api_key or os.environ.get("BPCORE_API_KEY") or None


class RemoteModel:
    """The model of a ``local=False`` task: a name on a server, called over HTTP."""

    def __init__(self, task: str, name: str | None, url: str, api_key: str | None) -> None:
        self.task = task
        self.name = name
        self.url = url
        self.api_key = api_key
        self.tasks = [task]

    @classmethod
    def connect(cls, task: str, model: Any, *, api_key: str | None, url: str | None) -> RemoteModel:
        """The remote model for ``task``: ``model`` is a name the server serves, or None for its default."""
        if model is not None and not isinstance(model, str):
            raise InputTypeError(
                f"with local=False the model is a name the server serves, got {type(model).__name__}",
                field="model",
            )
        return cls(task, model, server_url(url), server_key(api_key))

    def __repr__(self) -> str:
        return f"RemoteModel({self.name or 'default'!r} for {self.task} at {self.url})"

    def answer(self, call: PreparedCall) -> Any:
        """What a local call returns for ``call``, answered by the server."""
        body = {"model": self.name, **wire_payload(call.payload)} if self.name else wire_payload(call.payload)
        answers = request_json("POST", f"{self.url}/v1/{self.task}", body, self.api_key)["answer"]
        if call.model_kwargs.get("return_tensor"):
            import torch

            answers = torch.tensor(answers)
        return answers[0] if call.single else answers


def wire_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A prepared call's payload as the JSON body of a server call: images as PNG base64, no unset options."""
    body = {name: value for name, value in payload.items() if value is not None}
    if "image" in body:
        from bpcore.images import img_to_base64

        body["image"] = img_to_base64(body["image"])
    return body


def request_json(method: str, url: str, body: Any, api_key: str | None, *, content_type: str = "") -> Any:
    """Send ``body`` (JSON, or bytes with ``content_type``) and return the JSON answer; errors as bpcore's."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type or "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=DEFAULT_TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise error_from_response(error.code, error.read(), error.headers.get("Retry-After")) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServerError(f"cannot reach the bpcore server at {url}: {reason}") from None


def error_from_response(status: int, raw: bytes, retry_after: str | None = None) -> errors.BpcoreError:
    """The bpcore exception a server's error answer stands for (its ``type``, else its status)."""
    try:
        error = json.loads(raw)["error"]
        kind, message = str(error.get("type", "")), str(error.get("message", ""))
        problems = [(str(p["field"]), str(p["message"])) for p in error.get("problems") or []]
    except (ValueError, KeyError, TypeError, AttributeError):
        kind, message, problems = "", raw[:300].decode(errors="replace"), []
    if status == 401 or status == 403:
        return AuthenticationError(message or "the server refused the API key")
    known = getattr(errors, kind, None)
    if problems and isinstance(known, type) and issubclass(known, errors.InputError):
        return known(problems)
    if (
        status < 500
        and isinstance(known, type)
        and issubclass(known, errors.BpcoreError)
        and known is not ServerError
    ):
        if not issubclass(known, errors.TrainingError):
            return known(message)
    seconds = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    return ServerError(f"the server answered {status}: {message}", status=status, retry_after=seconds)


def upload(
    model: Any,
    name: str | None = None,
    description: str | None = None,
    tasks: Sequence[str] | None = None,
    details: Mapping[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
    api_key: str | None = None,
    *,
    url: str | None = None,
    overwrite: bool = True,
) -> str:
    """Save ``model`` and send it to a bpcore server, which serves it as ``name`` from its next request.

    The spec's ``backprop.upload`` with ``url=`` added (default ``$BPCORE_URL``). ``name``,
    ``description``, ``tasks`` and ``details`` are saved with the model as :func:`bpcore.save`
    saves them (default: the model's own); ``api_key`` is the server's key (default
    ``$BPCORE_API_KEY``); ``path`` keeps the saved folder there (default: a temporary folder).
    Like :func:`bpcore.save`, it replaces a model of that name unless ``overwrite=False``. Returns
    the name the server serves it under.

    Example::

        bpcore.upload(tg.model, name="t5-sentiment", description="Predicts sentiment", api_key="abc")
    """
    from bpcore.saving import save

    name = name or getattr(model, "name", None)
    base, key = server_url(url), server_key(api_key)
    with tempfile.TemporaryDirectory(prefix="bpcore-upload-") as scratch:
        folder = save(
            model,
            name=name,
            description=description,
            tasks=tasks,
            details=details,
            path=path or Path(scratch, "model"),
        )
        return upload_folder(folder, name or folder.name, url=base, api_key=key, overwrite=overwrite)


def upload_folder(
    folder: str | os.PathLike[str],
    name: str,
    *,
    url: str | None = None,
    api_key: str | None = None,
    overwrite: bool = False,
) -> str:
    """Send a saved model folder to a bpcore server as ``name`` (what ``bpcore upload PATH`` does)."""
    from bpcore.archives import pack_folder
    from bpcore.naming import check_model_name

    check_model_name(name)
    query = urllib.parse.urlencode({"name": name, "overwrite": str(bool(overwrite)).lower()})
    with tempfile.TemporaryFile() as archive:
        pack_folder(Path(folder), archive)
        archive.seek(0)
        data = archive.read()
    answer = request_json(
        "POST",
        f"{server_url(url)}/v1/models?{query}",
        data,
        server_key(api_key),
        content_type="application/gzip",
    )
    return str(answer.get("name", name))
