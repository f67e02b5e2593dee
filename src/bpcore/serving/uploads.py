"""Uploads: ``POST /v1/models`` installs a saved model folder sent as an archive; ``DELETE`` removes one.

An upload is untrusted input: it is unpacked with the archive limits of
:mod:`bpcore.archives`, checked with the same no-code rules as :func:`bpcore.load`, loaded
once to prove it works, and swapped in atomically under ``$BPCORE_HOME`` — a killed upload leaves
the previous model of that name in place. Uploads need an API key; a server without one takes none.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from bpcore.errors import InputError, ModelLoadError, ModelNotFoundError
from bpcore.naming import check_model_name
from bpcore.serving.http_errors import UploadsOff

if TYPE_CHECKING:
    from bpcore.serving.server import Server


def uploaded_names() -> list[str]:
    """The models saved or uploaded under ``$BPCORE_HOME``, which clients may name."""
    from bpcore.saving import home
    from bpcore.serving.pool import saved_name

    folder = home()
    return sorted(p.name for p in folder.iterdir() if saved_name(p.name)) if folder.is_dir() else []


def _check_new_name(name: str, overwrite: bool) -> None:
    from bpcore.plugins.registry import get_registry
    from bpcore.saving import home

    check_model_name(name)
    try:
        get_registry().resolve(name)
    except ModelNotFoundError:
        pass
    else:
        raise InputError(f"{name!r} is a registered model's name; upload under another name", field="name")
    if (home() / name).exists() and not overwrite:
        raise InputError(
            f"a model {name!r} is already served; pass overwrite=true to replace it", field="name"
        )


async def _receive(request: Request, into: Path) -> None:
    with into.open("wb") as archive:
        async for chunk in request.stream():  # the body limit counts as it arrives
            archive.write(chunk)


def _install(archive: Path, name: str, overwrite: bool, trust_pickle: bool) -> Path:
    from bpcore.archives import install_archive

    try:
        return install_archive(archive, name, overwrite=overwrite, trust_pickle=trust_pickle)
    except ModelLoadError as error:  # the upload's weights or config: the client's to fix
        raise InputError(str(error), field="archive") from None


def _delete(name: str) -> None:
    from bpcore.saving import home, remove_saved

    if name not in uploaded_names():
        raise ModelNotFoundError(f"no uploaded model {name!r:.200} on this server")
    remove_saved(home() / name)


def add_upload_routes(app: FastAPI, server: Server) -> None:
    @app.post("/v1/models", tags=["models"], status_code=201)
    async def upload(request: Request, name: str, overwrite: bool = False) -> dict[str, Any]:
        """Install a saved model folder sent as a tar or zip archive (the body) under ``name``."""
        if not server.config.api_keys:
            raise UploadsOff("this server takes no uploads: start it with --api-key to allow them")
        await run_in_threadpool(_check_new_name, name, overwrite)
        with tempfile.TemporaryDirectory(prefix="bpcore-upload-") as scratch:
            archive = Path(scratch) / "archive"
            await _receive(request, archive)
            folder = await run_in_threadpool(_install, archive, name, overwrite, server.config.trust_pickle)
        server.forget(name)
        return {"name": name, "path": folder.name}

    @app.delete("/v1/models/{name}", tags=["models"])
    async def delete(name: str) -> dict[str, Any]:
        """Remove an uploaded model; requests in flight finish on it."""
        if not server.config.api_keys:
            raise UploadsOff("this server takes no uploads: start it with --api-key to allow them")
        await run_in_threadpool(_delete, name)
        server.forget(name)
        return {"name": name, "deleted": True}

    del upload, delete
