"""bpcore's exceptions as HTTP answers: a status and a one-line JSON error, never a traceback.

The body is ``{"error": {"type", "message", "problems"}}``: ``type`` names the bpcore exception a
client raises again (:func:`bpcore.remote.error_from_response`), ``problems`` the fields and items
of an :class:`~bpcore.InputError`, as the Python API has them.
"""

from __future__ import annotations

import logging
from typing import Any

from bpcore import errors
from bpcore.serving.batcher import Overloaded

log = logging.getLogger("bpcore.serve")


class Unauthorized(errors.AuthenticationError):
    """No API key, or not one the server was started with (401)."""


class UploadsOff(errors.AuthenticationError):
    """The server takes no uploads: it was started without an API key (403)."""


class BodyTooLarge(errors.InputError):
    """A request body over ``--max-body`` (413)."""


class NotFound(errors.ModelNotFoundError):
    """No such route, task or model (404)."""


#: The first matching class decides the status; order from specific to general.
STATUSES: tuple[tuple[type[BaseException], int], ...] = (
    (Unauthorized, 401),
    (UploadsOff, 403),
    (BodyTooLarge, 413),
    (errors.InputError, 422),
    (errors.TaskNotSupportedError, 422),
    (errors.UnsafeLoadError, 422),
    (errors.ModelNotFoundError, 404),
    (Overloaded, 503),
)


def status_of(error: BaseException) -> int:
    for kind, status in STATUSES:
        if isinstance(error, kind):
            return status
    return 500


def error_body(error: BaseException) -> dict[str, Any]:
    """The JSON error for ``error``: a bpcore error's own message; anything else one line, logged here."""
    if not isinstance(error, errors.BpcoreError):
        log.error("internal error", exc_info=error)
        return {
            "error": {
                "type": "ServerError",
                "message": f"internal error ({type(error).__name__})",
                "problems": [],
            }
        }
    kind = next(cls.__name__ for cls in type(error).__mro__ if cls.__module__ == "bpcore.errors")
    message = str(error).strip().splitlines()[0] if str(error).strip() else kind
    problems = [{"field": field, "message": text} for field, text in getattr(error, "problems", [])]
    if problems and len(problems) > 1:
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return {"error": {"type": kind, "message": message[:2000], "problems": problems}}


def headers_of(error: BaseException) -> dict[str, str]:
    if isinstance(error, Overloaded):
        return {"Retry-After": "1"}
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return {}
