"""Spec 8.3, ``backprop.utils.download``: fetch a file into bpcore's home folder, atomically and resumably."""

from __future__ import annotations

import contextlib
import os
import posixpath
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.client import HTTPException, HTTPResponse
from pathlib import Path
from typing import IO, Any

from bpcore.errors import InputError, ModelLoadError
from bpcore.saving import home

__all__ = ["download"]

_CHUNK = 1 << 16


def download(
    url: str,
    folder: str,
    root: str | os.PathLike[str] | None = None,
    force: bool = False,
    *,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> str:
    """Download the file at ``url`` into ``root/folder`` and return its path.

    ``root`` defaults to bpcore's home folder (``$BPCORE_HOME`` or ``~/.cache/bpcore``). A file
    already there is returned without a request, unless ``force``. The file appears only once
    complete: it is written to ``<name>.part`` first, and an interrupted download resumes from
    that part with an HTTP range request when it is tried again. ``progress`` shows a progress
    bar (default: when stderr is a terminal). An unreachable server or an HTTP error raises
    :class:`bpcore.ModelLoadError`; a URL without a file name, :class:`bpcore.InputError`.

    Example::

        from bpcore.utils.download import download

        path = download("https://example.com/weights/model.bin", "my-model")
        # .../.cache/bpcore/my-model/model.bin
    """
    name = _file_name(url)
    target_dir = Path(home() if root is None else root) / folder
    target = target_dir / name
    if target.is_file() and not force:
        return str(target)
    target_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(target_dir):
        if target.is_file() and not force:  # another process downloaded it while we waited
            return str(target)
        part = target_dir / f"{name}.part"
        if force:
            part.unlink(missing_ok=True)  # the remote file may have changed since that part
        try:
            _fetch(url, part, timeout, progress)
        except (OSError, HTTPException) as error:  # URLError and HTTPError are OSErrors
            raise ModelLoadError(f"cannot download {url!r} to {target}: {_reason(error)}") from error
        os.replace(part, target)
    return str(target)


def _file_name(url: str) -> str:
    """The name of the file ``url`` points to; refused when it could leave the folder."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"{url!r} is not an http(s) URL", field="url")
    name = posixpath.basename(urllib.parse.unquote(parts.path))
    if name in ("", ".", "..") or any(char in name for char in "\\\0"):
        raise InputError(f"{url!r} does not end in a file name to save it under", field="url")
    return name


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Downloads into ``folder`` one process at a time: two downloads of a file would append to
    one ``.part``. The folder itself is locked, so no lock file is left behind."""
    try:
        import fcntl
    except ImportError:  # Windows has no flock: concurrent downloads of one file are not guarded
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield  # closing the descriptor releases the lock
    finally:
        os.close(descriptor)


def _fetch(url: str, part: Path, timeout: float, progress: bool | None) -> None:
    """Complete ``part`` with the bytes of ``url``, resuming where an earlier attempt stopped."""
    response, offset = _open(url, part.stat().st_size if part.exists() else 0, timeout)
    with response, open(part, "ab" if offset else "wb") as out:
        remaining = response.headers.get("Content-Length")
        expected = int(remaining) if remaining and remaining.isdigit() else None
        total = None if expected is None else offset + expected
        with _progress_bar(progress, part.name[: -len(".part")], total, offset) as bar:
            written = _copy(response, out, bar)
        out.flush()
        os.fsync(out.fileno())
    if expected is not None and written < expected:
        # The part stays: the next attempt resumes from it.
        raise ConnectionError(f"the connection closed after {written} of {expected} bytes")


def _open(url: str, offset: int, timeout: float) -> tuple[HTTPResponse, int]:
    """The response to read from, and the offset its body starts at (0 when the server restarts)."""
    if offset:
        try:
            response = _request(url, offset, timeout)
        except urllib.error.HTTPError as error:
            if error.code != 416:  # 416: the part is not a prefix of the file (any more)
                raise
            error.close()
        else:
            if response.status == 200:  # the server ignores ranges: the whole file again
                return response, 0
            if response.status == 206 and _range_start(response) == offset:
                return response, offset
            response.close()
    return _request(url, 0, timeout), 0


def _request(url: str, offset: int, timeout: float) -> HTTPResponse:
    headers = {"User-Agent": "bpcore-download"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    response: HTTPResponse = urllib.request.urlopen(
        urllib.request.Request(url, headers=headers), timeout=timeout
    )
    return response


def _range_start(response: HTTPResponse) -> int | None:
    """Where a 206 response's ``Content-Range: bytes <start>-<end>/<size>`` starts."""
    unit, _, span = (response.headers.get("Content-Range") or "").partition(" ")
    start = span.partition("-")[0]
    return int(start) if unit == "bytes" and start.isdigit() else None


def _copy(response: HTTPResponse, out: IO[bytes], bar: Any) -> int:
    written = 0
    while chunk := response.read(_CHUNK):
        out.write(chunk)
        written += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
    return written


def _progress_bar(show: bool | None, name: str, total: int | None, initial: int) -> Any:
    """A tqdm bar (a context manager) when asked, or by default on a terminal; else ``nullcontext``."""
    if show is None:
        show = sys.stderr is not None and sys.stderr.isatty()
    try:
        from tqdm import tqdm
    except ImportError:
        show = False
    if not show:
        return contextlib.nullcontext(None)
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        error.close()  # its body is an open response
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"the server is unreachable ({error.reason})"
    return f"{type(error).__name__}: {error}"
