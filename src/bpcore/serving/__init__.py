"""Serving bpcore's tasks over HTTP: ``bpcore serve`` and :data:`serve` (extra ``bpcore[serve]``).

Importing this package imports no web framework; calling :data:`serve` and :mod:`bpcore.serving.app` do.

Example::

    import bpcore

    bpcore.serve(models=["all-minilm-l6-v2"], api_keys=["abc"])   # http://127.0.0.1:8000/docs

    from ray import serve                                      # on a Ray cluster (bpcore[ray])
    serve.run(bpcore.serve.ray_app(models=["all-minilm-l6-v2"], replicas=2))
"""

from __future__ import annotations

import os
from typing import Any

from bpcore.serving.config import CONFIG_ENV, ServeConfig

#: Seconds a stopping server gives requests in flight to finish.
GRACEFUL_SECONDS = 30


class Serve:
    """``bpcore.serve(...)`` runs a server; ``bpcore.serve.ray_app(...)`` builds one for Ray Serve."""

    def __call__(self, models: Any = (), **options: Any) -> None:
        """Run a bpcore server until SIGTERM or Ctrl-C (which let requests in flight finish).

        ``options`` are :class:`ServeConfig`'s fields (``host``, ``port``, ``api_keys``, ``workers``,
        ``max_batch_size``, ``ray``, ...); ``$BPCORE_API_KEY`` adds a key. It listens on 127.0.0.1
        unless told otherwise and writes nothing into the working folder.
        """
        config = ServeConfig.with_keys_from_env(models=models, **options)
        if config.ray:
            from bpcore.serving.ray import serve_on_ray

            serve_on_ray(config)
            return
        _run_uvicorn(config)

    def ray_app(self, models: Any = (), **options: Any) -> Any:
        """A Ray Serve application of the bpcore server, for ``serve.run(...)`` or ``serve run`` (bpcore[ray]).

        ``options`` are :class:`ServeConfig`'s fields, and ``serve.deployment`` options
        (``autoscaling_config``, ``ray_actor_options``, ...) for the deployment.
        """
        import attrs

        from bpcore.serving.ray import ray_app

        fields = {field.name for field in attrs.fields(ServeConfig)}
        settings = {key: value for key, value in options.items() if key in fields}
        deployment = {key: value for key, value in options.items() if key not in fields}
        return ray_app(ServeConfig.with_keys_from_env(models=models, **settings), **deployment)


def _run_uvicorn(config: ServeConfig) -> None:
    import uvicorn

    from bpcore.serving.app import create_app

    common: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "log_level": "info",
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
    }
    if config.workers == 1:
        uvicorn.run(create_app(config), **common)
        return
    os.environ[CONFIG_ENV] = config.to_env()  # each worker process builds its own app from it
    uvicorn.run("bpcore.serving.app:app_from_env", factory=True, workers=config.workers, **common)


serve = Serve()

__all__ = ["Serve", "ServeConfig", "serve"]
