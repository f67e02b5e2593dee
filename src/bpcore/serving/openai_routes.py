"""OpenAI-compatible routes, so OpenAI clients (``openai.OpenAI(base_url=...)``, LangChain) use a bpcore server.

``POST /v1/embeddings`` is text vectorisation and ``POST /v1/completions`` text generation, in
OpenAI's request and response shapes. Both take the native routes' path
(:meth:`~bpcore.serving.server.Server.run_call`): the pool's model, the task's own checks, and
the same batcher, so OpenAI and native calls share model calls. Errors come in OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``, with the native routes' status codes (422
bad input, ``param`` naming the OpenAI field; 404 unknown model; 401 key; 503 overloaded), so
the openai client raises its matching exceptions.

Choices, and why:

* ``encoding_format``: ``float`` (the default here, as in OpenAI's API) or ``base64``: the vector
  as little-endian float32 bytes, base64-encoded, as OpenAI and text-embeddings-inference send it.
  The openai python client asks for ``base64`` when no format is given and decodes it with
  numpy, so both must give the same vector (to float32 precision).
* ``dimensions``: taken only when equal to the model's vector size (or null). OpenAI shortens
  vectors only for models trained for it (text-embedding-3, Matryoshka) and refuses the field for
  the others; text-embeddings-inference cuts any vector and re-normalises it. bpcore cannot tell
  whether a model was trained so, and a cut vector of any other model is silently worse, so a
  different size is a 422 naming ``dimensions`` and the model's size.
* ``usage`` counts tokens with the model's own Hugging Face fast tokenizer when the model object
  holds one (``model.tokenizer``, its ``.tokenizer``, or ``model.model.tokenizer``: bp_hf, bp_st,
  CLIP with a Hugging Face tokenizer), on a private copy; otherwise whitespace-separated words.
  Inputs and prompts count with the tokenizer's special tokens (what the model reads, as
  text-embeddings-inference counts), untruncated; completions count without them.
* Token ids as ``input``/``prompt`` (lists of integers) are refused: the server cannot know which
  tokenizer made them. LangChain's ``OpenAIEmbeddings`` sends them unless
  ``check_embedding_ctx_length=False``; the error says so.
* Completions: ``max_tokens`` is the task's ``max_length`` (generated tokens), ``n`` its
  ``num_generations``, ``temperature`` and ``top_p`` pass through; left out, the model's own
  defaults apply (not OpenAI's 16 tokens and temperature 1). ``top_p`` 1 and ``n`` 1 keep every
  token and one answer, i.e. are left out (a ``top_p`` set would turn sampling on). ``stop``,
  ``stream``, ``logprobs``, ``echo``, ``best_of``, the penalties, ``logit_bias``, ``seed``,
  ``suffix`` and ``stream_options`` are refused (422 naming the field) unless at their defaults;
  ``user`` is ignored. ``finish_reason`` is ``length`` when the completion's token count reached
  ``max_tokens``, else ``stop`` (the task does not report why generation ended).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from bpcore.errors import InputError, InputTypeError, ModelNotFoundError, TaskNotSupportedError
from bpcore.serving.batcher import Overloaded
from bpcore.serving.http_errors import BodyTooLarge, Unauthorized, error_body, headers_of, status_of
from bpcore.serving.responses import JSONResponse
from bpcore.serving.server import Server
from bpcore.tasknames import TEXT_GENERATION, TEXT_VECTORISATION

log = logging.getLogger("bpcore.serve")

EMBEDDINGS, COMPLETIONS = "/v1/embeddings", "/v1/completions"

#: The fields each route takes and uses (``user`` is taken and ignored).
EMBEDDING_FIELDS = frozenset({"input", "model", "encoding_format", "dimensions", "user"})
COMPLETION_FIELDS = frozenset({"prompt", "model", "max_tokens", "temperature", "top_p", "n", "user"})
#: OpenAI completion fields bpcore cannot honour: taken only at the values that ask for nothing.
COMPLETION_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "best_of": (None, 1),
    "echo": (None, False),
    "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0),
    "logit_bias": (None, {}),
    "logprobs": (None,),
    "seed": (None,),
    "stop": (None, []),
    "stream": (None, False),
    "stream_options": (None,),
    "suffix": (None,),
}
#: A task's input fields by their OpenAI names, for the ``param`` of an error.
EMBEDDING_NAMES = {"text": "input"}
COMPLETION_NAMES = {"text": "prompt", "max_length": "max_tokens", "num_generations": "n"}

_TEXTS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
#: The request bodies, for ``/docs`` only: the routes check bodies themselves.
SCHEMAS: dict[str, dict[str, Any]] = {
    EMBEDDINGS: {
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": _TEXTS,
            "model": {"type": "string", "description": "a served model (default: the task's)"},
            "encoding_format": {"enum": ["float", "base64"], "default": "float"},
            "dimensions": {"type": "integer", "description": "only the model's own vector size"},
            "user": {"type": "string", "description": "ignored"},
        },
    },
    COMPLETIONS: {
        "type": "object",
        "required": ["prompt"],
        "description": "OpenAI's other fields are refused unless at their defaults",
        "properties": {
            "prompt": _TEXTS,
            "model": {"type": "string", "description": "a served model (default: the task's)"},
            "max_tokens": {"type": "integer", "description": "the task's max_length"},
            "temperature": {"type": "number"},
            "top_p": {"type": "number"},
            "n": {"type": "integer", "description": "the task's num_generations"},
            "user": {"type": "string", "description": "ignored"},
        },
    },
}

#: ``(model name, response body)`` of one OpenAI request.
Handler = Callable[[Server, dict[str, Any]], Awaitable[tuple[str, dict[str, Any]]]]


def add_openai_routes(app: FastAPI, server: Server) -> None:
    """Add ``POST /v1/embeddings`` and ``POST /v1/completions`` to a bpcore app (see the module's notes)."""
    _add_key_check(app, server)
    routes: list[tuple[str, str, Handler, dict[str, str], str]] = [
        (EMBEDDINGS, TEXT_VECTORISATION, _embeddings, EMBEDDING_NAMES, "Embeddings (OpenAI-compatible)"),
        (COMPLETIONS, TEXT_GENERATION, _completions, COMPLETION_NAMES, "Completions (OpenAI-compatible)"),
    ]
    for path, task, handler, names, summary in routes:
        app.add_api_route(
            path,
            _route(server, task, handler, names),
            methods=["POST"],
            name=path.rsplit("/", 1)[1],
            summary=summary,
            tags=["openai"],
            openapi_extra={
                "requestBody": {"required": True, "content": {"application/json": {"schema": SCHEMAS[path]}}}
            },
        )


def _add_key_check(app: FastAPI, server: Server) -> None:
    # The app's key check answers a wrong key on these routes in OpenAI's error shape.
    for path in (EMBEDDINGS, COMPLETIONS):
        server.key_error_shapes[path] = openai_error


def _route(
    server: Server, task: str, handler: Handler, names: Mapping[str, str]
) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        started, model, status = time.perf_counter(), "-", 500
        try:
            body = await _read_object(request)
            model = str(body.get("model") or "default")
            model, answer = await handler(server, body)
            status = 200
            return JSONResponse(answer)
        except Exception as error:  # every error in OpenAI's shape, not the app's handlers' bpcore shape
            status = status_of(error)
            return openai_error(error, names)
        finally:  # counted as the native routes count, under the task's name
            server.metrics.requests.labels(task, model, str(status)).inc()
            server.metrics.latency.labels(task, model).observe(time.perf_counter() - started)

    route.__name__ = f"openai_{task.replace('-', '_')}_route"
    return route


async def _read_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as error:
        raise InputError(f"is not JSON ({error})", field="body") from None
    if not isinstance(body, dict):
        raise InputTypeError(f"expected a JSON object, got {type(body).__name__}", field="body")
    return body


# -- errors ---------------------------------------------------------------------------------------


class Unsupported(InputTypeError):
    """An OpenAI field this server does not take, or takes only at its default (422)."""


#: OpenAI's ``code`` of an error; the first matching class decides.
CODES: tuple[tuple[type[BaseException], str], ...] = (
    (Unsupported, "unsupported_parameter"),
    (Unauthorized, "invalid_api_key"),
    (BodyTooLarge, "request_too_large"),
    (InputTypeError, "invalid_type"),
    (InputError, "invalid_value"),
    (TaskNotSupportedError, "model_not_supported"),
    (ModelNotFoundError, "model_not_found"),
    (Overloaded, "overloaded"),
)


def openai_error(error: BaseException, names: Mapping[str, str] | None = None) -> JSONResponse:
    """``error`` as OpenAI sends errors: the native status and headers, ``param`` the OpenAI field."""
    status = status_of(error)
    problems = [(_param(field, names or {}), text) for field, text in getattr(error, "problems", [])]
    if problems:
        message = "; ".join(f"{field}: {text}" for field, text in problems)
    else:  # the native one-line message; an unexpected error is logged there, never shown
        message = error_body(error)["error"]["message"]
    param = problems[0][0] if problems else None
    if param is None and isinstance(error, (ModelNotFoundError, TaskNotSupportedError)):
        param = "model"
    body = {
        "error": {
            "message": message[:2000],
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "param": param,
            "code": next((code for kind, code in CODES if isinstance(error, kind)), None),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers_of(error))


def _param(field: str, names: Mapping[str, str]) -> str:
    """A task's field path as the OpenAI field: ``input.text[2]`` is ``input[2]`` on /v1/embeddings."""
    found = re.fullmatch(r"input\.(\w+)(.*)", field)
    return names.get(found[1], found[1]) + found[2] if found else field


# -- request fields -------------------------------------------------------------------------------


def _check_fields(
    body: Mapping[str, Any], takes: frozenset[str], defaults: Mapping[str, tuple[Any, ...]]
) -> None:
    for name, value in body.items():
        if name in defaults and value not in defaults[name]:
            shown = json.dumps(defaults[name][-1])
            raise Unsupported(f"is not supported by this server; leave it out or send {shown}", field=name)
        if name not in takes and name not in defaults:
            raise Unsupported(f"unknown field; this route takes {', '.join(sorted(takes))}", field=name)


def _model(body: Mapping[str, Any]) -> str | None:
    """The model asked for; None (left out) is the server's default for the task."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InputTypeError(f"expected a model name, got {type(model).__name__}", field="model")
    return model


def _texts(body: Mapping[str, Any], field: str) -> Any:
    """The texts of ``field``, as given (the task checks them); token ids are refused here."""
    value = body.get(field)
    if value is None:
        raise InputError("is required", field=field)
    if _token_ids(value):
        raise InputTypeError(
            "token ids are not accepted (this server does not know their tokenizer): send the texts "
            "themselves; LangChain's OpenAIEmbeddings does with check_embedding_ctx_length=False",
            field=field,
        )
    return value


def _token_ids(value: Any) -> bool:
    """One token list (integers) or several (lists of them): OpenAI's other ``input``/``prompt`` forms."""

    def is_id(item: Any) -> bool:
        return isinstance(item, int) and not isinstance(item, bool)

    return (
        isinstance(value, list)
        and bool(value)
        and (
            all(is_id(item) for item in value)
            or all(isinstance(item, list) and all(map(is_id, item)) for item in value)
        )
    )


# -- embeddings -----------------------------------------------------------------------------------


async def _embeddings(server: Server, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _check_fields(body, EMBEDDING_FIELDS, {})
    texts = _texts(body, "input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InputError(f"must be 'float' or 'base64', got {encoding!r:.50}", field="encoding_format")
    dimensions = _dimensions(body.get("dimensions"))
    answer, key, front = await server.run_call(TEXT_VECTORISATION, _model(body), {"text": texts})
    single = isinstance(texts, str)
    vectors = [answer] if single else answer
    if dimensions is not None and vectors and dimensions != len(vectors[0]):
        raise InputError(
            f"this model's vectors have {len(vectors[0])} dimensions and bpcore does not shorten them: "
            f"leave dimensions out or send {len(vectors[0])}",
            field="dimensions",
        )
    tokens = sum(await run_in_threadpool(count_tokens, front.model, [texts] if single else texts, True))
    data = [
        {"object": "embedding", "index": index, "embedding": _encoded(vector, encoding)}
        for index, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return key, {"object": "list", "data": data, "model": key, "usage": usage}


def _dimensions(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputTypeError(f"expected a whole number, got {type(value).__name__}", field="dimensions")
    if value < 1:
        raise InputError(f"must be positive, got {value}", field="dimensions")
    return value


def _encoded(vector: Sequence[float], encoding: str) -> list[float] | str:
    """A vector as JSON floats, or base64 of its little-endian float32 bytes (what OpenAI sends)."""
    if encoding == "float":
        return list(vector)
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


# -- completions ----------------------------------------------------------------------------------


async def _completions(server: Server, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _check_fields(body, COMPLETION_FIELDS, COMPLETION_DEFAULTS)
    prompt = _texts(body, "prompt")
    arguments = {"text": prompt, **_generation_options(body)}
    answer, key, front = await server.run_call(TEXT_GENERATION, _model(body), arguments)
    prompts, per_prompt = ([prompt], [answer]) if isinstance(prompt, str) else (prompt, answer)
    # One answer per prompt, or a list of them with n above 1; OpenAI lists them all, prompt by prompt.
    texts = [text for found in per_prompt for text in (found if isinstance(found, list) else [found])]
    prompt_counts = await run_in_threadpool(count_tokens, front.model, prompts, True)
    text_counts = await run_in_threadpool(count_tokens, front.model, texts, False)
    limit = body.get("max_tokens")
    choices = [
        {
            "text": text,
            "index": index,
            "logprobs": None,
            "finish_reason": "length" if limit is not None and count >= limit else "stop",
        }
        for index, (text, count) in enumerate(zip(texts, text_counts))
    ]
    used, made = sum(prompt_counts), sum(text_counts)
    return key, {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": key,
        "choices": choices,
        "usage": {"prompt_tokens": used, "completion_tokens": made, "total_tokens": used + made},
    }


def _generation_options(body: Mapping[str, Any]) -> dict[str, Any]:
    """The task's options from OpenAI's fields; those left out (or asking for nothing) stay unset."""
    options = {
        "max_length": body.get("max_tokens"),
        "temperature": body.get("temperature"),
        # top_p 1 keeps every token: OpenAI's default, not a wish to sample (which setting it means).
        "top_p": None if body.get("top_p") == 1 else body.get("top_p"),
        "num_generations": None if body.get("n") == 1 else body.get("n"),
    }
    return {name: value for name, value in options.items() if value is not None}


# -- token counts ---------------------------------------------------------------------------------

#: A private tokenizer per model object (None: the model has none); dropped with the model.
_TOKENIZERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_TOKENIZERS_LOCK = threading.Lock()


def count_tokens(model: Any, texts: Sequence[str], special: bool) -> list[int]:
    """Tokens of each text by the model's Hugging Face fast tokenizer, else whitespace-separated words.

    ``special``: with the special tokens the tokenizer adds (what the model reads).
    """
    tokenizer = _private_tokenizer(model)
    if tokenizer is not None:
        try:
            return [
                len(encoding.ids)
                for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=special)
            ]
        except Exception:  # usage is informational: a tokenizer's failure never fails a request
            log.debug("counting words: the tokenizer failed", exc_info=True)
    return [len(text.split()) for text in texts]


def _private_tokenizer(model: Any) -> Any:
    """A copy of the model's fast tokenizer (its ``backend_tokenizer``), made once per model; or None.

    A copy, because the model's own one changes its truncation settings as it tokenises on the
    batch thread: used from another thread meanwhile, tokenizers raises "Already borrowed".
    The copy never truncates nor pads, so it counts whole texts and is only ever read.
    """
    with _TOKENIZERS_LOCK:
        try:
            weakref.ref(model)  # a model taking none is counted in words, not copied on every request
            if model in _TOKENIZERS:
                return _TOKENIZERS[model]
            backend = _backend_tokenizer(model)
            tokenizer = None if backend is None else type(backend).from_str(backend.to_str())
            if tokenizer is not None:
                tokenizer.no_truncation()
                tokenizer.no_padding()
            _TOKENIZERS[model] = tokenizer
            return tokenizer
        except Exception:  # no weak reference to the model, or an odd tokenizer: count words
            return None


def _backend_tokenizer(model: Any) -> Any:
    """The Rust tokenizer behind the model's transformers tokenizer, wherever the model keeps it."""
    for owner in (model, getattr(model, "model", None)):  # bp_st: model.model is the SentenceTransformer
        found = getattr(owner, "tokenizer", None)
        for candidate in (found, getattr(found, "tokenizer", None)):  # open_clip wraps a transformers one
            backend = getattr(candidate, "backend_tokenizer", None)
            if backend is not None and hasattr(backend, "to_str"):
                return backend
    return None


# -- /v1/models -----------------------------------------------------------------------------------


def model_cards(
    rows: Sequence[Mapping[str, Any]], loaded: Sequence[str], uploaded: Sequence[str]
) -> list[dict[str, Any]]:
    """``GET /v1/models``'s ``data`` in OpenAI's shape: a card per name a client may send.

    Registered models are owned by their plugin, the others (loaded from a path, uploaded) by
    ``bpcore``; ``created`` is the time of listing, as vLLM gives it (no model records one).
    """
    created = int(time.time())
    owners = {str(row["name"]): str(row.get("plugin") or "bpcore") for row in rows}
    for name in [*loaded, *uploaded]:
        owners.setdefault(name, "bpcore")
    return [
        {"id": name, "object": "model", "created": created, "owned_by": owner}
        for name, owner in owners.items()
    ]
