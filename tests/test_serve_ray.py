"""bpcore on Ray Serve: two replicas on a local Ray (``num_cpus=2``) answer as direct calls, under load and when one dies.

One Ray instance for the module (Ray's start and stop take most of its time). The replicas are
separate processes that get everything the usual way: ``BPCORE_HOME`` and ``BPCORE_LOAD_PLUGINS``
through the deployment's ``runtime_env`` (set only after Ray started, so inheriting them from
this process cannot make the tests pass), the tests folder and a fake plugin site on
``PYTHONPATH`` through the job's ``runtime_env``, and the tiny model classes through that site's
``bpcore`` entry point. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.serve", reason="the Ray Serve tests need bpcore[ray] (pip install 'ray[serve]')")

import attrs  # noqa: E402
import torch  # noqa: E402
from core_helpers import TESTS_DIR, TinyPlugin  # noqa: E402
from serve_helpers import call  # noqa: E402
from test_core_cli import fake_plugins  # noqa: E402
from test_serve import TEXTS, close, task_calls  # noqa: E402

import bpcore  # noqa: E402
from bpcore.plugins import manager as plugins  # noqa: E402
from bpcore.serving import ray as on_ray  # noqa: E402
from bpcore.serving.config import ServeConfig  # noqa: E402

KEY = "ray-test-key"
CLASSES_ENTRY_POINT = "ray_test_classes"
CLASSES_PLUGIN = (
    "import bpcore\n\n@bpcore.hookimpl\ndef register_model_classes(register):\n"
    "    for name in ('TinyTextModel', 'TinyImageModel', 'TinyTextToTextModel'):\n"
    "        register(name, 'tiny_models:' + name)\n"
)
SAVED = {"text": "saved-text", "image": "saved-image", "t2t": "saved-t2t"}


# -- without a Ray instance -------------------------------------------------------------------
def test_nothing_but_bpcore_serving_ray_imports_ray():
    code = (
        "import sys, bpcore, bpcore.cli, bpcore.serving, bpcore.serving.app, bpcore.serving.commands\n"
        "import bpcore.serving.ray\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_deployment_carries_settings_env_and_sizes(monkeypatch, bpcore_home):
    monkeypatch.setenv("BPCORE_LOAD_PLUGINS", "some_plugin")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BPCORE_API_KEY", "not-carried")
    monkeypatch.setenv("UNRELATED_SECRET", "not-carried")
    app = bpcore.serve.ray_app(models=["m"], replicas=3, api_keys=["k"], max_batch_size=8, max_queue=50)
    deployment = app._bound_deployment
    assert deployment.name == "bpcore" and deployment.num_replicas == 3
    assert deployment.max_ongoing_requests == 16  # a batch running and one gathering
    assert deployment.ray_actor_options["num_cpus"] == on_ray.REPLICA_CPUS
    env = deployment.ray_actor_options["runtime_env"]["env_vars"]
    assert env["BPCORE_HOME"] == str(bpcore_home) and env["BPCORE_LOAD_PLUGINS"] == "some_plugin"
    assert env["HF_HUB_OFFLINE"] == "1" and "BPCORE_API_KEY" not in env and "UNRELATED_SECRET" not in env
    (settings,) = deployment.init_args
    assert ServeConfig(**settings) == ServeConfig(
        models=["m"], replicas=3, api_keys=["k", "not-carried"], max_batch_size=8, max_queue=50
    )
    json.dumps(settings)  # plain data: no class of ours is pickled into the cluster

    scaled = on_ray.deployment_options(
        ServeConfig(),
        autoscaling_config={"min_replicas": 1, "max_replicas": 4},
        ray_actor_options={"num_gpus": 1},
    )
    assert "num_replicas" not in scaled  # Ray decides, aiming at a full batch in flight per replica
    assert scaled["autoscaling_config"]["target_ongoing_requests"] == ServeConfig().max_batch_size
    assert scaled["ray_actor_options"]["num_gpus"] == 1 and scaled["ray_actor_options"]["num_cpus"] == 1
    assert on_ray.ray_app(ServeConfig(), **scaled)._bound_deployment.ray_actor_options["num_gpus"] == 1


def test_bpcore_serve_ray_runs_on_ray_with_the_replicas_given(monkeypatch):
    from bpcore.cli import main

    monkeypatch.delenv("BPCORE_API_KEY", raising=False)
    seen = []
    monkeypatch.setattr(on_ray, "serve_on_ray", seen.append)
    assert main(["serve", "--ray", "--replicas", "3", "--model", "m", "--port", "0"]) == 0
    assert seen == [ServeConfig(models=["m"], ray=True, replicas=3, port=0)]


def test_serve_on_ray_waits_for_sigterm_then_stops(monkeypatch, capsys):
    calls = []

    def start(config, local):
        calls.append(("start", local))

        def terminate_once_waiting() -> None:  # the handler is ours only while serve_on_ray waits
            while signal.getsignal(signal.SIGTERM) is previous:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=terminate_once_waiting, daemon=True).start()
        return "http://127.0.0.1:1234"

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(on_ray, "connect", lambda: True)
    monkeypatch.setattr(on_ray, "start", start)
    monkeypatch.setattr(on_ray, "stop", lambda local: calls.append(("stop", local)))
    on_ray.serve_on_ray(ServeConfig(ray=True))
    assert calls == [("start", True), ("stop", True)]
    assert signal.getsignal(signal.SIGTERM) is previous
    assert "bpcore running on http://127.0.0.1:1234" in capsys.readouterr().err


def _asgi(app: Any, *messages: dict[str, Any], fail: bool = False) -> list[dict[str, Any]]:
    """What a client gets through :class:`CleanProxyErrors` from a proxy that sends ``messages``."""

    async def proxy(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)
        if fail:
            raise RuntimeError("the proxy failed")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": "/v1/text-vectorisation", "method": "POST"}
    asyncio.run(app(proxy)(scope, receive, send))
    return sent


def _start(status: int, content_type: bytes) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}


def _body(body: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body}


@pytest.mark.parametrize(
    ("messages", "fail"),
    [
        ((), False),  # a replica died before answering: the proxy sends nothing
        ((_start(200, b"application/json"),), False),  # ... after the start of its answer
        ((_start(503, b"text/plain"), _body(b"Request dropped")), False),  # the proxy's own 503
        ((_start(500, b"text/plain"), _body(b"Internal Server Error")), False),
        ((_start(408, b"text/plain"), _body(b"Request 1 timed out after 30.0s.")), False),
        ((), True),
    ],
    ids=["no-answer", "start-only", "proxy-503", "proxy-500", "proxy-408", "proxy-raised"],
)
def test_what_the_proxy_answers_itself_is_a_clean_json_503(messages, fail):
    sent = _asgi(on_ray.CleanProxyErrors, *messages, fail=fail)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 503 and headers[b"retry-after"] == b"1"
    assert json.loads(sent[1]["body"])["error"]["type"] == "ServerError"


def test_the_apps_own_answers_pass_the_proxy_unchanged():
    for status in (200, 500, 503):
        messages = (_start(status, b"application/json"), _body(b'{"a": 1}'))
        assert _asgi(on_ray.CleanProxyErrors, *messages) == list(messages)


# -- on a local Ray instance ------------------------------------------------------------------
@attrs.frozen
class RayServer:
    url: str
    home: Path


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayServer]:
    """``bpcore serve --ray --replicas 2`` as :func:`serve_on_ray` runs it, on a local Ray with 2 CPUs."""
    folder = tmp_path_factory.mktemp("ray")
    home = folder / "bpcore-home"
    site = fake_plugins(folder / "site", {CLASSES_ENTRY_POINT: CLASSES_PLUGIN})
    config = ServeConfig(
        models=[SAVED["text"]],
        replicas=2,
        port=0,
        api_keys=[KEY],
        max_wait_ms=10,
        ray=True,
        # A request stuck on the replica a test kills ends as a 503 well before the client gives up.
        request_timeout=30,
    )
    local = False
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BPCORE_HOME", str(home))
        env.setenv("BPCORE_LOAD_PLUGINS", "")
        env.delenv("RAY_ADDRESS", raising=False)
        _save_tiny_models()
        env.delenv("BPCORE_HOME")
        pythonpath = os.pathsep.join([str(site), str(TESTS_DIR)])
        # The replicas' logs stay in Ray's session folder (/tmp/ray/session_latest/logs), out of pytest's output.
        # No prestarted workers: nothing would use them (the replicas, Serve's controller and its proxy
        # each have a runtime_env of their own), and starting them halves how fast Ray starts here.
        local = on_ray.connect(
            num_cpus=2,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
            _system_config={"enable_worker_prestart": False, "prestart_worker_first_driver": False},
        )
        try:
            # Set after Ray started: the replicas can only have them from the deployment's runtime_env.
            env.setenv("BPCORE_HOME", str(home))
            env.setenv("BPCORE_LOAD_PLUGINS", CLASSES_ENTRY_POINT)
            url = on_ray.start(config, local=local)
        except BaseException:
            on_ray.stop(local=local)
            raise
    try:
        yield RayServer(url=url, home=home)
    finally:
        on_ray.stop(local=local)


def _save_tiny_models() -> None:
    plugins.reset()
    torch.manual_seed(0)
    plugin = bpcore.register_plugin(TinyPlugin(), name="ray-tiny")
    try:
        for kind, registered in (("text", "tiny-text"), ("image", "tiny-image"), ("t2t", "tiny-t2t")):
            bpcore.save(bpcore.models.AutoModel.from_pretrained(registered), name=SAVED[kind])
    finally:
        bpcore.unregister_plugin(plugin)
        plugins.reset()


@pytest.fixture
def server(ray_server: RayServer, monkeypatch: pytest.MonkeyPatch) -> RayServer:
    """The module's server, with this test's direct calls loading the same saved models."""
    monkeypatch.setenv("BPCORE_HOME", str(ray_server.home))
    return ray_server


def _replica_states() -> dict[str, int]:
    from ray import serve

    deployment = serve.status().applications[on_ray.APP_NAME].deployments[on_ray.APP_NAME]
    return {str(getattr(state, "value", state)): count for state, count in deployment.replica_states.items()}


def _replica_actors() -> list[str]:
    import ray

    return sorted(
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(f"SERVE_REPLICA::{on_ray.APP_NAME}#")
    )


def test_two_replicas_answer_every_task_as_a_direct_call(server, image_files):
    assert _replica_states() == {"RUNNING": 2} and len(_replica_actors()) == 2
    assert call(f"{server.url}/readyz")[1] == {"status": "ready", "loaded": [SAVED["text"]]}
    for task, model, arguments in task_calls(SAVED, image_files):
        status, body, _ = call(f"{server.url}/v1/{task.task}", "POST", {"model": model, **arguments}, KEY)
        assert status == 200, body
        assert body["model"] == model and close(body["answer"], task(model)(**arguments)), task.task
    remote = bpcore.TextVectorisation(SAVED["text"], local=False, url=server.url, api_key=KEY)
    assert close(remote(TEXTS), bpcore.TextVectorisation(SAVED["text"])(TEXTS))


def test_errors_keep_their_status_and_json_shape_through_ray(server):
    status, body, headers = call(f"{server.url}/v1/text-vectorisation", "POST", {"text": "a"})
    assert status == 401 and body["error"]["type"] == "AuthenticationError"
    assert headers.get("www-authenticate") == "Bearer"
    status, body, _ = call(
        f"{server.url}/v1/text-vectorisation", "POST", {"model": "no-such", "text": "a"}, KEY
    )
    assert status == 404 and body["error"]["type"] == "ModelNotFoundError"
    status, body, _ = call(f"{server.url}/v1/text-vectorisation", "POST", raw=b"{not json", key=KEY)
    assert status == 422 and body["error"]["problems"][0]["field"] == "body"


CLIENTS, ROUNDS = 8, 10


def _load_request(client: int, round_: int) -> tuple[str, dict[str, Any]]:
    """Mixed tasks and models, so batches of different calls form on both replicas."""
    text = f"sentence {client}-{round_} about {'cats' if (client + round_) % 2 else 'bread'}"
    kind = (client + round_) % 3
    if kind == 0:
        return "text-vectorisation", {"model": SAVED["text"], "text": text}
    if kind == 1:
        return "text-classification", {"model": SAVED["text"], "text": text, "labels": ["cats", "bread"]}
    return "text-generation", {"model": SAVED["t2t"], "text": text, "max_length": 6, "temperature": 0.0}


def _direct(task: str, arguments: dict[str, Any]) -> Any:
    from bpcore.models.direct import front_for

    front = front_for(task)
    options = {key: value for key, value in arguments.items() if key != "model"}
    return front(arguments["model"])(**options)


def _expected() -> dict[tuple[int, int], Any]:
    return {
        (client, round_): _direct(*_load_request(client, round_))
        for client in range(CLIENTS)
        for round_ in range(ROUNDS)
    }


def _safe_call(url: str, task: str, body: dict[str, Any]) -> tuple[Any, Any, dict[str, str]]:
    """One request; a broken connection is an outcome too (the assertions show it), never a lost thread."""
    try:
        return call(f"{url}/v1/{task}", "POST", body, KEY)
    except Exception as error:
        return type(error).__name__, str(error), {}


def _run_load(url: str, after_each: Any = None) -> dict[tuple[int, int], tuple[Any, Any, dict[str, str]]]:
    outcomes: dict[tuple[int, int], tuple[Any, Any, dict[str, str]]] = {}

    def client(index: int) -> None:
        for round_ in range(ROUNDS):
            outcomes[(index, round_)] = _safe_call(url, *_load_request(index, round_))
            if after_each is not None:
                after_each()

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    return outcomes


def test_a_bounded_load_on_two_replicas_answers_exactly_as_direct_calls(server):
    expected = _expected()
    outcomes = _run_load(server.url)
    wrong = {key: outcome[:2] for key, outcome in outcomes.items() if outcome[0] != 200}
    assert not wrong
    assert all(close(outcomes[key][1]["answer"], expected[key]) for key in expected)
    assert _replica_states() == {"RUNNING": 2}


def test_a_replica_killed_under_load_is_replaced_and_every_answer_is_right_or_a_clean_503(server):
    import ray

    expected = _expected()
    before = _replica_actors()
    assert len(before) == 2
    answered, killed = [0], threading.Event()
    lock = threading.Lock()

    def kill_one_after_a_few_answers() -> None:
        with lock:
            answered[0] += 1
            if answered[0] == 2 * CLIENTS and not killed.is_set():
                ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)
                killed.set()

    outcomes = _run_load(server.url, kill_one_after_a_few_answers)
    assert killed.is_set()
    unavailable = 0
    for key, (status, body, headers) in outcomes.items():
        if status == 503:  # a request in flight on the killed replica: a clean, retryable refusal
            assert body["error"]["type"] == "ServerError" and headers.get("retry-after") == "1", body
            unavailable += 1
        else:
            assert status == 200, (key, status, body)
            assert close(body["answer"], expected[key]), key
    # Only requests the proxy had sent to the killed replica fail: about one per client at most.
    assert unavailable <= 2 * CLIENTS, f"{unavailable} of {len(outcomes)} requests refused"

    # Replaced: two running replicas again, one of them new. The killed actor leaves Ray's list of
    # actors before the controller notices its death, so both are checked.
    def replaced() -> bool:
        actors = _replica_actors()
        fresh = len(actors) == 2 and before[0] not in actors and before[1] in actors
        return fresh and _replica_states() == {"RUNNING": 2}

    deadline = time.monotonic() + 90
    while not replaced() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert replaced(), (_replica_actors(), _replica_states())
    status, body, _ = call(
        f"{server.url}/v1/text-vectorisation", "POST", {"model": SAVED["text"], "text": "a"}, KEY
    )
    assert status == 200 and close(body["answer"], bpcore.TextVectorisation(SAVED["text"])("a"))
