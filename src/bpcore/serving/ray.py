"""bpcore's server on Ray Serve: ``bpcore serve --ray`` and ``bpcore.serve.ray_app(...)`` (extra ``bpcore[ray]``).

The app of :func:`bpcore.serving.app.create_app` is the ingress of one Ray Serve deployment: each
replica builds its own app (models, batchers, metrics) from the same :class:`ServeConfig`, loads
the start models before Ray sends it a request, and batches concurrent requests itself, exactly
as a single ``bpcore serve`` does. Ray places the replicas (``--replicas N``, or an
``autoscaling_config``), routes each request to a lightly loaded one and replaces a replica
that dies.

Shared state: models uploaded with ``POST /v1/models`` are written below ``$BPCORE_HOME``, and
every replica loads them from there. On a cluster of more than one machine ``BPCORE_HOME`` must
be a shared path (an NFS or similar mount at the same place on every node); a replica keeps
nothing else but what it loaded from there.

Replicas are separate processes, possibly on other machines: they get their settings as the
deployment's arguments and this process's ``BPCORE_*``, ``HF_*``, ``TRANSFORMERS_*``,
``TOKENIZERS_*`` and ``TORCH_*`` environment variables through the deployment's ``runtime_env``
(on top of the job's own ``runtime_env``, so ``ray.init(runtime_env=...)`` and ``serve run
--runtime-env`` still reach them). The plugins serving the models must be installed on every node.

Example (the user's own Ray deployment)::

    import bpcore
    from ray import serve

    serve.run(bpcore.serve.ray_app(models=["all-minilm-l6-v2"], replicas=2), name="bpcore")

Requests in flight on a replica that dies fail in Ray's proxy; :func:`proxy_middlewares` makes
those (and the proxy's own "too many requests queued" answers) a 503 with bpcore's JSON error
and ``Retry-After``. ``bpcore serve --ray`` installs it; in your own deployment set
``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=bpcore.serving.ray:proxy_middlewares`` in the
environment of the cluster (or of the Serve controller: :func:`controller_options`).

Nothing outside this module imports Ray, and this module imports it only inside its functions.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from bpcore.errors import InputError
from bpcore.serving import GRACEFUL_SECONDS
from bpcore.serving.config import CONFIG_ENV, ServeConfig

if TYPE_CHECKING:
    from ray.serve import Application
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("bpcore.serve")

#: The Ray Serve application's and deployment's name.
APP_NAME = "bpcore"
#: CPUs Ray reserves for each replica: torch then runs one thread per replica (Ray sets
#: ``OMP_NUM_THREADS`` from it); more replicas, not more threads, use more cores.
REPLICA_CPUS = 1.0
#: Environment variables carried to the replicas, by prefix: bpcore's own (``BPCORE_HOME``,
#: ``BPCORE_LOAD_PLUGINS``, ...) and those of the libraries the plugins load models with.
CARRIED_PREFIXES = ("BPCORE_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TOKENIZERS_", "TORCH_")
#: Not carried: the API key is in the settings already, and the settings travel as arguments.
NOT_CARRIED = frozenset({"BPCORE_API_KEY", CONFIG_ENV})
#: How often Ray asks each replica :meth:`_Ingress.check_health`, and how long it waits for the answer.
HEALTH_CHECK_PERIOD_S = 5.0
HEALTH_CHECK_TIMEOUT_S = 30.0
#: Where Ray's HTTP proxy finds :func:`proxy_middlewares` (read by the proxy process at start).
PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = "bpcore.serving.ray:proxy_middlewares"
_INSTALL_HINT = "bpcore serve --ray needs Ray Serve: pip install 'bpcore[ray]'"


def _import_serve() -> Any:
    try:
        from ray import serve
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    return serve


# -- the deployment -------------------------------------------------------------------------
class _Ingress:
    """One replica: the bpcore app built in the replica's own process, from the settings it was bound with."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._config = ServeConfig(**settings)
        self._app: Any = None

    def __serve_build_asgi_app__(self) -> Any:
        """Ray Serve calls this in the replica after ``__init__``, then runs the app's lifespan (the start models load)."""
        from bpcore.serving.app import create_app

        self._app = create_app(self._config)
        return self._app

    def check_health(self) -> None:
        """``GET /healthz``'s answer: the replica answers (Ray runs this on the app's event loop).

        Ray replaces a replica that fails here or does not answer within ``HEALTH_CHECK_TIMEOUT_S``.
        Readiness needs no check: Ray sends a replica requests only once its start models loaded.
        """
        if self._app is None:
            raise RuntimeError("the bpcore app was not built")


_deployment: Any = None


def _deployment_class() -> Any:
    """The Ray Serve deployment (built once: Ray ships the class to the replicas)."""
    global _deployment
    if _deployment is None:
        serve = _import_serve()
        _deployment = serve.deployment(name=APP_NAME)(serve.ingress()(_Ingress))
    return _deployment


def replica_env() -> dict[str, str]:
    """The environment variables every replica gets: bpcore's and the model libraries', and an absolute ``BPCORE_HOME``."""
    from bpcore.saving import home

    carried = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(CARRIED_PREFIXES) and key not in NOT_CARRIED
    }
    carried["BPCORE_HOME"] = str(home().expanduser().absolute())  # the same path on every node
    return carried


def _runtime_env(env_vars: Mapping[str, str]) -> dict[str, Any]:
    """The job's runtime_env (what Serve gives a deployment without one) with ``env_vars`` added."""
    import ray

    job: dict[str, Any] = {}
    if ray.is_initialized():
        job = dict(ray.get_runtime_context().runtime_env or {})
    return {**job, "env_vars": {**(job.get("env_vars") or {}), **env_vars}}


def deployment_options(config: ServeConfig, **overrides: Any) -> dict[str, Any]:
    """Ray Serve's options for the bpcore deployment; ``overrides`` (any ``serve.deployment`` option) win.

    With an ``autoscaling_config``, Ray decides the number of replicas (``config.replicas`` is
    ignored), aiming at ``max_batch_size`` requests in flight per replica unless told otherwise.
    """
    options: dict[str, Any] = {
        "num_replicas": config.replicas,
        # A replica takes a batch to run and one to gather; Ray's router holds the rest and sends
        # each to the replica with the fewest in flight.
        "max_ongoing_requests": 2 * config.max_batch_size,
        # More waiting than that in a proxy is a 503 with Retry-After, as a full queue is in one server.
        "max_queued_requests": config.max_queue,
        "ray_actor_options": {"num_cpus": REPLICA_CPUS, "runtime_env": _runtime_env(replica_env())},
        "health_check_period_s": HEALTH_CHECK_PERIOD_S,
        "health_check_timeout_s": HEALTH_CHECK_TIMEOUT_S,
        "graceful_shutdown_timeout_s": GRACEFUL_SECONDS,
    }
    if overrides.get("autoscaling_config") is not None:
        del options["num_replicas"]
        autoscaling = dict(overrides["autoscaling_config"])
        autoscaling.setdefault("target_ongoing_requests", config.max_batch_size)
        overrides = {**overrides, "autoscaling_config": autoscaling}
    if "ray_actor_options" in overrides:
        overrides = {
            **overrides,
            "ray_actor_options": {**options["ray_actor_options"], **overrides["ray_actor_options"]},
        }
    return {**options, **overrides}


def ray_app(config: ServeConfig, **overrides: Any) -> Application:
    """The bpcore server as a Ray Serve application, for ``serve.run(...)`` or ``serve run``.

    ``overrides`` are ``serve.deployment`` options (``autoscaling_config``, ``ray_actor_options``
    such as ``{"num_gpus": 1}``, ...) over :func:`deployment_options`'.
    """
    deployment = _deployment_class().options(**deployment_options(config, **overrides))
    application: Application = deployment.bind(attrs.asdict(config))
    return application


# -- Ray's proxy: clean 503s -----------------------------------------------------------------
_UNAVAILABLE = "the server is busy or one of its replicas stopped; try again shortly"


def _json_503(message: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"error": {"type": "ServerError", "message": message, "problems": []}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
    ]
    return {"type": "http.response.start", "status": 503, "headers": headers}, body


class CleanProxyErrors:
    """ASGI middleware for Ray Serve's HTTP proxy: what the proxy answers itself is bpcore's JSON 503.

    A request in flight on a replica that died gets no answer from the proxy (a bare 500 from its
    web server), only the start of one, or none until ``request_timeout`` (a plain-text 408); a
    proxy that queues too many requests answers a plain-text 503. Each becomes ``503`` with ``{"error": {"type": "ServerError", ...}}`` and
    ``Retry-After: 1``: the request may be sent again. To that end a response's start is held
    until its first body bytes arrive. The app's own answers (JSON) pass unchanged; a streamed
    answer cut after its first bytes stays cut (bpcore's answers are not streamed).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/-/"):  # the proxy's own routes
            await self.app(scope, receive, send)
            return
        state = "waiting"  # then "passing" once the answer's first bytes are sent, or "replaced"
        held: Message | None = None

        async def checked(message: Message) -> None:
            nonlocal state, held
            if state == "passing":
                await send(message)
            elif state == "waiting" and message["type"] == "http.response.start":
                if _from_proxy(message):
                    state = "replaced"
                    await _send_503(send)
                else:
                    held = message
            elif state == "waiting" and message["type"] == "http.response.body" and held is not None:
                state = "passing"
                await send(held)
                await send(message)
            elif state == "waiting":
                await send(message)
            # "replaced": the body of the proxy's own answer, already answered

        try:
            await self.app(scope, receive, checked)
        except Exception:
            if state == "passing":
                raise
            log.warning("Ray's proxy failed a request", exc_info=True)
        if state == "waiting":
            await _send_503(send)


def _from_proxy(start: Message) -> bool:
    """An error the proxy answers itself (a 500, its 503, its 408 when a request timed out): not bpcore's JSON."""
    content_type = dict(start.get("headers") or []).get(b"content-type", b"")
    return start["status"] in (408, 500, 503) and not content_type.startswith(b"application/json")


async def _send_503(send: Send) -> None:
    start, body = _json_503(_UNAVAILABLE)
    await send(start)
    await send({"type": "http.response.body", "body": body})


def proxy_middlewares() -> list[Any]:
    """Ray Serve's HTTP-proxy callback (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``): :class:`CleanProxyErrors`."""
    from starlette.middleware import Middleware

    return [Middleware(CleanProxyErrors)]


def controller_options() -> dict[str, Any]:
    """``serve.start(controller_options=...)``: the Serve controller, and the proxies it starts, use :func:`proxy_middlewares`."""
    return {"runtime_env": {"env_vars": {PROXY_CALLBACK_ENV: PROXY_CALLBACK}}}


# -- bpcore serve --ray -----------------------------------------------------------------------
def connect(**local_options: Any) -> bool:
    """``ray.init``: the cluster at ``$RAY_ADDRESS``, else a new local instance (with ``local_options``).

    Returns whether the instance is local (started here, and stopped by :func:`stop`).
    """
    _import_serve()
    import ray

    address = os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return False
    ray.init(include_dashboard=False, logging_level=logging.WARNING, **local_options)
    return True


def start(config: ServeConfig, *, local: bool = True, **overrides: Any) -> str:
    """Start Ray Serve's proxy on ``config.host:config.port`` and run :func:`ray_app` there; its URL.

    ``config.port`` 0 takes a free port of this machine (a local instance only). Returns once
    every replica loaded the start models. On a cluster where Serve already runs, its proxies
    keep the host and port they were started with (Ray logs a warning).
    """
    serve = _import_serve()
    port = config.port
    if port == 0:
        if not local:
            raise InputError(
                "--port 0 takes a free port of this machine: give a port with $RAY_ADDRESS", field="port"
            )
        port = _free_port(config.host)
    serve.start(
        http_options={"host": config.host, "port": port, "request_timeout_s": config.request_timeout},
        controller_options=controller_options(),
    )
    serve.run(ray_app(config, **overrides), name=APP_NAME, route_prefix="/")
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"http://{host}:{port}"


def stop(*, local: bool = True) -> None:
    """Stop what :func:`start` started: all of Serve and Ray on a local instance, the bpcore app on a cluster."""
    serve = _import_serve()
    import ray

    try:
        if local:
            serve.shutdown()
        else:
            serve.delete(APP_NAME)
    finally:
        ray.shutdown()


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def serve_on_ray(config: ServeConfig) -> None:
    """``bpcore serve --ray``: serve on Ray Serve until SIGTERM or Ctrl-C, then stop cleanly."""
    local = connect()
    try:
        url = start(config, local=local)
        from bpcore.saving import home

        where = "a local Ray instance" if local else f"the Ray cluster at {os.environ['RAY_ADDRESS']}"
        print(
            f"bpcore running on {url} (Ray Serve on {where}, {config.replicas} replica(s); "
            f"uploaded models in {home()}, which every node must reach; Ctrl-C or SIGTERM stops)",
            file=sys.stderr,
            flush=True,
        )
        _wait_for_signal()
        print("bpcore: stopping Ray Serve", file=sys.stderr, flush=True)
    finally:
        stop(local=local)
    print("bpcore: stopped", file=sys.stderr, flush=True)


def _wait_for_signal() -> None:
    stopping = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
