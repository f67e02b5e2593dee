"""The bpcore server: one FastAPI app answering every task, with dynamic batching.

``POST /v1/{task}`` takes the task call as JSON (the Python call's argument names, plus ``model``)
and answers ``{"task", "model", "answer"}`` with what the Python call returns. ``GET /v1/models``,
``POST /v1/models`` (upload), ``DELETE /v1/models/{name}``, ``GET /healthz``, ``GET /readyz`` and
``GET /metrics`` complete it. Build one with :func:`create_app`; run it with :func:`bpcore.serve`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bpcore.errors import BpcoreError, InputError
from bpcore.models.direct import front_for
from bpcore.serving.config import ServeConfig
from bpcore.serving.http_errors import (
    BodyTooLarge,
    NotFound,
    Unauthorized,
    error_body,
    headers_of,
    status_of,
)
from bpcore.serving.openapi import request_schema
from bpcore.serving.responses import JSONResponse
from bpcore.serving.server import Server
from bpcore.tasknames import TASKS

#: Routes a load balancer or orchestrator probes: no key needed.
OPEN_PATHS = ("/healthz", "/readyz")


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is a 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_error(
                send, BodyTooLarge(f"is over the server's limit of {self.limit} bytes", field="body")
            )
            return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge(f"is over the server's limit of {self.limit} bytes", field="body")
            return message

        await self.app(scope, counting, send)


async def _send_error(send: Send, error: BaseException) -> None:
    response = JSONResponse(error_body(error), status_code=status_of(error), headers=headers_of(error))
    await send(
        {"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers}
    )
    await send({"type": "http.response.body", "body": response.body})


def create_app(config: ServeConfig | None = None, **options: Any) -> FastAPI:
    """The server's FastAPI app for ``config`` (or :class:`ServeConfig` ``options``); start models load on startup.

    Example::

        app = create_app(models=["all-minilm-l6-v2"], api_keys=["abc"])
        # uvicorn.run(app, host="127.0.0.1", port=8000), or bpcore.serve(...)
    """
    config = config or ServeConfig(**options)
    server = Server(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _thread_lock_for_progress_bars()
        await run_in_threadpool(server.pool.load_at_start, config.models)
        server.ready = True
        yield
        for batcher in server.batchers.values():
            await batcher.close()

    app = FastAPI(
        title="bpcore",
        summary="bpcore's tasks over HTTP: the Python call as JSON",
        lifespan=lifespan,
        # Routes are documented and checked from the tasks' own calls, not from pydantic models.
        separate_input_output_schemas=False,
    )
    app.state.server = server
    _add_error_handlers(app)
    _add_task_routes(app, server)
    _add_service_routes(app, server)
    from bpcore.serving.uploads import add_upload_routes

    add_upload_routes(app, server)
    from bpcore.serving.openai_routes import add_openai_routes

    add_openai_routes(app, server)
    app.add_middleware(KeyCheck, server=server)
    app.add_middleware(BodyLimit, limit=config.max_body)
    return app


def app_from_env() -> FastAPI:
    """The app for ``bpcore serve --workers N``: each worker reads the settings from the environment."""
    return create_app(ServeConfig.from_env())


def _add_error_handlers(app: FastAPI) -> None:
    async def bpcore_error(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(error_body(error), status_code=status_of(error), headers=headers_of(error))

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        status = getattr(error, "status_code", 500)
        if status == 404:
            return await bpcore_error(request, NotFound(f"no route {request.method} {request.url.path}"))
        message = str(getattr(error, "detail", "")) or "request refused"
        body = {"error": {"type": "BpcoreError", "message": message, "problems": []}}
        return JSONResponse(body, status_code=status)

    async def validation_error(request: Request, error: Exception) -> JSONResponse:
        problems = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in getattr(error, "errors", list)()]
        return await bpcore_error(request, InputError(problems or "invalid request"))

    # bpcore's errors are answers (4xx and clean 500s); only other exceptions are bugs Starlette logs.
    app.add_exception_handler(BpcoreError, bpcore_error)
    app.add_exception_handler(Exception, bpcore_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


class KeyCheck:
    """ASGI middleware: every route but the probes needs one of the server's keys, when it has any.

    Plain ASGI, as :class:`BodyLimit`: Starlette's ``BaseHTTPMiddleware`` took about a third of the
    event loop's time under load (a task group and streams per request). A route may answer a
    wrong key in its own shape (``server.key_error_shapes``, e.g. OpenAI's).
    """

    def __init__(self, app: ASGIApp, server: Server) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS and self.server.config.api_keys:
            try:
                self.server.check_key(Headers(scope=scope))
            except Unauthorized as error:
                answer = self.server.key_error_shapes.get(scope["path"], _native_error)
                await answer(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _thread_lock_for_progress_bars() -> None:
    """Give tqdm a thread lock before any model's first (hidden) progress bar makes its own.

    tqdm's default lock is a multiprocessing semaphore (sentence-transformers' ``encode`` makes one
    on its first call): a worker stopped by Ctrl-C left it behind, and Python warned of a leaked
    semaphore at shutdown. A server's processes share no terminal line, so a thread lock is enough.
    """
    import threading

    import tqdm

    if not hasattr(tqdm.tqdm, "_lock"):
        tqdm.tqdm.set_lock(threading.RLock())


def _native_error(error: BaseException) -> Response:
    return JSONResponse(error_body(error), status_code=status_of(error), headers=headers_of(error))


async def read_json(request: Request) -> Any:
    import json

    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as error:
        raise InputError(f"is not JSON ({error})", field="body") from None


def _add_task_routes(app: FastAPI, server: Server) -> None:
    for task in TASKS:
        front = front_for(task)
        app.add_api_route(
            f"/v1/{task}",
            _task_route(server, task),
            methods=["POST"],
            name=task,
            summary=(front.__doc__ or task).strip().splitlines()[0],
            tags=["tasks"],
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": request_schema(front)}},
                }
            },
        )


def _task_route(server: Server, task: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def route(request: Request) -> JSONResponse:
        started, model, status = time.perf_counter(), "-", 500
        try:
            body = await read_json(request)
            model = str(body.get("model") or "default") if isinstance(body, dict) else "-"
            result = await server.answer(task, body)
            model, status = result["model"], 200
            return JSONResponse(result)
        except Exception as error:
            status = status_of(error)
            raise
        finally:
            server.metrics.requests.labels(task, model, str(status)).inc()
            server.metrics.latency.labels(task, model).observe(time.perf_counter() - started)

    route.__name__ = f"{task.replace('-', '_')}_route"
    return route


def _add_service_routes(app: FastAPI, server: Server) -> None:
    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, str]:
        """Live: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"])
    async def readyz() -> JSONResponse:
        """Ready: the models named at start are loaded."""
        if not server.ready:
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "1"})
        return JSONResponse({"status": "ready", "loaded": server.pool.loaded})

    @app.get("/metrics", tags=["service"])
    async def metrics() -> Response:
        """Prometheus metrics: requests, latency, batch sizes and queue depth per task and model."""
        return Response(server.metrics.text(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", tags=["models"])
    async def models() -> dict[str, Any]:
        """What ``bpcore list-models`` shows, the models loaded here, and those uploaded; OpenAI's list too."""
        from bpcore.models.auto import list_model_rows
        from bpcore.serving.openai_routes import model_cards
        from bpcore.serving.uploads import uploaded_names

        rows = await run_in_threadpool(list_model_rows)
        uploaded = await run_in_threadpool(uploaded_names)
        return {
            "models": rows,
            "loaded": server.pool.loaded,
            "uploaded": uploaded,
            # OpenAI's shape as well, for the openai client's models.list(): the names clients may send.
            "object": "list",
            "data": model_cards(rows, server.pool.loaded, uploaded),
        }

    del healthz, readyz, metrics, models  # registered by the decorators
