"""A server's settings, declared once: ``bpcore serve``'s options and :func:`bpcore.serve`'s keywords."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from bpcore.errors import InputError
from bpcore.precision import PRECISIONS

#: Where ``bpcore serve --workers N`` hands its settings to each worker process.
CONFIG_ENV = "BPCORE_SERVE_CONFIG"


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        return (values,)
    return tuple(values)


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InputError(f"must be a positive number, got {value!r}", field=attribute.name)


def _not_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InputError(f"must be 0 or more, got {value!r}", field=attribute.name)


@attrs.frozen(kw_only=True)
class ServeConfig:
    """How a bpcore server runs. Each field is a ``bpcore serve`` option (``max_batch_size`` is ``--max-batch-size``)."""

    #: Models loaded at start (registered names, saved names or folders); others load on first request.
    models: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, metadata={"help": "a model to load at start (repeat for more)"}
    )
    host: str = attrs.field(
        default="127.0.0.1", metadata={"help": "address to listen on (127.0.0.1: this machine only)"}
    )
    port: int = attrs.field(
        default=8000, validator=_not_negative, metadata={"help": "port (0: any free port)"}
    )
    #: Keys clients must send (``Authorization: Bearer KEY``); none: no key needed, and uploads are off.
    api_keys: tuple[str, ...] = attrs.field(
        default=(),
        converter=_strings,
        metadata={"help": "a key clients must send (repeat for more); also $BPCORE_API_KEY"},
    )
    workers: int = attrs.field(
        default=1,
        validator=_positive,
        metadata={"help": "server processes, each with its own models and batcher"},
    )
    max_body: int = attrs.field(
        default=32 << 20,
        validator=_positive,
        metadata={"help": "largest request body in bytes (uploads too)"},
    )
    max_batch_size: int = attrs.field(
        default=64,
        validator=_positive,
        metadata={
            "help": "most items (texts, images) run as one model call (measured: bench/serve_throughput.py)"
        },
    )
    max_wait_ms: float = attrs.field(
        default=5.0, validator=_not_negative, metadata={"help": "how long a batch waits for more requests"}
    )
    concurrent_batches: int = attrs.field(
        default=2,
        validator=_positive,
        metadata={"help": "batches of one model run at once (the next forms while others run)"},
    )
    precision: str = attrs.field(
        default="fp32",
        validator=attrs.validators.in_(PRECISIONS),
        metadata={
            "help": "inference precision: bf16 pays only where the CPU (AMX, avx512-bf16) or GPU has it",
            "choices": PRECISIONS,
        },
    )
    max_queue: int = attrs.field(
        default=1024, validator=_positive, metadata={"help": "requests waiting per model before 503"}
    )
    ray: bool = attrs.field(
        default=False,
        metadata={
            "help": "run on Ray Serve: a local Ray, or the cluster at $RAY_ADDRESS (needs bpcore[ray])"
        },
    )
    replicas: int = attrs.field(
        default=1, validator=_positive, metadata={"help": "Ray Serve replicas of the app (with --ray)"}
    )
    request_timeout: float = attrs.field(
        default=300.0,
        validator=_positive,
        metadata={
            "help": "with --ray: seconds a request may wait and run before Ray's proxy answers 503 "
            "(a request stuck on a replica that died ends so)"
        },
    )
    trust_pickle: bool = attrs.field(
        default=False, metadata={"help": "accept uploads holding a pickle (it can run code)"}
    )

    def to_env(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(CONFIG_ENV)
        return cls(**json.loads(raw)) if raw else cls()

    @classmethod
    def with_keys_from_env(cls, api_keys: Sequence[str] = (), **options: Any) -> ServeConfig:
        """Settings with ``$BPCORE_API_KEY`` (comma-separated) added to ``api_keys``."""
        from_env = [key for key in os.environ.get("BPCORE_API_KEY", "").split(",") if key]
        keys: tuple[str, ...] = (*api_keys, *from_env)
        return cls(api_keys=keys, **options)
