"""A real bpcore server on loopback: HTTP answers and ``local=False`` answers equal direct calls; errors are clean."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from serve_helpers import call, running_server

import bpcore
from bpcore.images import img_to_base64, path_to_img

KEY = "test-key"
TEXTS = ["the cat sat on the mat", "bread is baked in an oven", "a quiet afternoon"]


@pytest.fixture
def saved(tmp_path: Path) -> dict[str, str]:
    """Tiny models saved by name under BPCORE_HOME, so the server and the test load the same weights."""
    torch.manual_seed(0)
    names = {"text": "tiny-text", "image": "tiny-image", "t2t": "tiny-t2t"}
    from core_helpers import TinyPlugin

    plugin = bpcore.register_plugin(TinyPlugin(), name="serve-tiny")
    try:
        for kind, registered in names.items():
            bpcore.save(bpcore.models.AutoModel.from_pretrained(registered), name=f"saved-{kind}")
    finally:
        bpcore.unregister_plugin(plugin)
    return {kind: f"saved-{kind}" for kind in names}


def close(a: Any, b: Any) -> bool:
    """Equal answers: floats to 1e-5 (a batch pads texts together), everything else exactly."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    return bool(a == b)


def task_calls(saved: dict[str, str], images: dict[str, Path]) -> list[tuple[type, str, dict[str, Any]]]:
    """One call per task: (task class, model, arguments as JSON would carry them)."""
    red, blue = (img_to_base64(path_to_img(str(images[c]))) for c in ("red", "blue"))
    return [
        (bpcore.TextVectorisation, saved["text"], {"text": TEXTS}),
        (bpcore.TextClassification, saved["text"], {"text": TEXTS, "labels": ["cats", "food"], "top_k": 1}),
        (bpcore.ImageClassification, saved["image"], {"image": [red, blue], "labels": ["red", "blue"]}),
        (bpcore.ImageVectorisation, saved["image"], {"image": red}),
        (bpcore.ImageTextVectorisation, saved["image"], {"image": [red, blue], "text": ["red", "blue"]}),
        (
            bpcore.QA,
            saved["t2t"],
            {"question": "Where?", "context": "In London.", "prev_qa": [["Who?", "Sally"]]},
        ),
        (bpcore.Emotion, saved["t2t"], {"text": TEXTS[:2]}),
        (bpcore.Summarisation, saved["t2t"], {"text": TEXTS[0]}),
        (bpcore.TextGeneration, saved["t2t"], {"text": TEXTS[:2], "max_length": 8, "temperature": 0.0}),
    ]


def test_every_task_answers_over_http_and_local_false_as_a_direct_call(saved, image_files):
    with running_server(api_keys=[KEY]) as url:
        for task, model, arguments in task_calls(saved, image_files):
            direct = task(model)(**arguments)
            status, body, _ = call(f"{url}/v1/{task.task}", "POST", {"model": model, **arguments}, KEY)
            assert status == 200, body
            assert body["model"] == model and body["task"] == task.task
            assert close(body["answer"], direct), task.task
            remote = task(model, local=False, api_key=KEY, url=url)(**arguments)
            assert close(remote, direct), task.task


def test_a_remote_vector_comes_back_as_a_tensor_when_asked(saved):
    with running_server() as url:
        remote = bpcore.TextVectorisation(saved["text"], local=False, url=url)(TEXTS, return_tensor=True)
    direct = bpcore.TextVectorisation(saved["text"])(TEXTS, return_tensor=True)
    assert isinstance(remote, torch.Tensor) and torch.allclose(remote, direct, atol=1e-6)


def test_concurrent_clients_get_their_own_answers_in_batches(saved):
    texts = [f"sentence {i} about {'cats' if i % 2 else 'bread'}" for i in range(64)]
    direct = bpcore.TextVectorisation(saved["text"])
    expected = {text: direct(text) for text in texts}

    def client(index: int) -> list[bool]:
        results = []
        for round_ in range(20):
            text = texts[(index * 7 + round_) % len(texts)]
            status, body, _ = call(
                f"{url}/v1/text-vectorisation", "POST", {"model": saved["text"], "text": text}
            )
            results.append(status == 200 and close(body["answer"], expected[text]))
        return results

    with running_server(max_wait_ms=10) as url:
        with ThreadPoolExecutor(32) as pool:
            outcomes = [ok for results in pool.map(client, range(32)) for ok in results]
        _, metrics, _ = call(f"{url}/metrics")
    assert len(outcomes) == 640 and all(outcomes)
    calls = _metric(metrics, 'bpcore_batch_items_count{model="saved-text",task="text-vectorisation"}')
    assert calls < 640  # requests were answered by fewer model calls: batches formed


def _metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {line_start} in:\n{text[:2000]}")


def test_input_errors_are_422_naming_the_field_as_the_python_error_does(saved):
    with running_server() as url:
        status, body, _ = call(
            f"{url}/v1/text-classification", "POST", {"model": saved["text"], "txt": ["a"]}
        )
        assert status == 422 and body["error"]["problems"][0]["field"] == "txt"
        arguments = {"text": ["a", "b"], "labels": [["x"], ["y"], ["z"]]}
        with pytest.raises(bpcore.InputError) as local_error:
            bpcore.TextClassification(saved["text"])(**arguments)
        status, body, _ = call(f"{url}/v1/text-classification", "POST", {"model": saved["text"], **arguments})
        assert status == 422
        assert [(p["field"], p["message"]) for p in body["error"]["problems"]] == local_error.value.problems
        with pytest.raises(bpcore.InputError) as remote_error:
            bpcore.TextClassification(saved["text"], local=False, url=url)(**arguments)
        assert remote_error.value.problems == local_error.value.problems
        status, body, _ = call(f"{url}/v1/text-vectorisation", "POST", raw=b"{not json")
        assert status == 422 and body["error"]["problems"][0]["field"] == "body"


def test_an_image_path_is_refused_over_http_so_no_server_file_is_read(saved, image_files):
    with running_server() as url:
        body = {"model": saved["image"], "image": str(image_files["red"])}
        status, answer, _ = call(f"{url}/v1/image-vectorisation", "POST", body)
    assert status == 422 and answer["error"]["problems"][0]["field"].startswith("input.image")


def test_unknown_model_and_route_are_404_and_a_model_path_is_never_loaded(saved, tmp_path):
    folder = bpcore.save(bpcore.load(saved["text"]), path=tmp_path / "elsewhere")
    with running_server() as url:
        for model in ("no-such-model", str(folder)):
            status, body, _ = call(f"{url}/v1/text-vectorisation", "POST", {"model": model, "text": "a"})
            assert status == 404 and body["error"]["type"] == "ModelNotFoundError", body
        with pytest.raises(bpcore.ModelNotFoundError):
            bpcore.TextVectorisation("no-such-model", local=False, url=url)("a")
        status, body, _ = call(f"{url}/v1/no-such-task", "POST", {"text": "a"})
        assert status == 404 and "error" in body


def test_every_route_but_the_probes_wants_the_key(saved):
    with running_server(api_keys=[KEY]) as url:
        routes = [
            ("GET", "/v1/models", None),
            ("GET", "/metrics", None),
            ("GET", "/openapi.json", None),
            ("POST", "/v1/text-vectorisation", {"model": saved["text"], "text": "a"}),
            ("POST", "/v1/models?name=some-model", None),
            ("DELETE", "/v1/models/some-model", None),
        ]
        for method, path, body in routes:
            for key in (None, "wrong-key"):
                status, answer, headers = call(f"{url}{path}", method, body, key)
                assert status == 401 and answer["error"]["type"] == "AuthenticationError", (method, path)
        assert call(f"{url}/healthz")[0] == 200 and call(f"{url}/readyz")[0] == 200
        assert call(f"{url}/v1/models", key=KEY)[0] == 200
        with pytest.raises(bpcore.errors.AuthenticationError):
            bpcore.TextVectorisation(saved["text"], local=False, url=url, api_key="wrong")("a")


def test_a_body_over_the_limit_is_413(saved):
    with running_server(max_body=1000) as url:
        status, body, _ = call(
            f"{url}/v1/text-vectorisation", "POST", {"model": saved["text"], "text": "x" * 2000}
        )
    assert status == 413 and body["error"]["problems"][0]["field"] == "body"


class Failing(torch.nn.Module):
    """Vectorises, but fails on the text 'boom' (a model's own bug) and waits on ``gate`` if one is set."""

    tasks = ["text-vectorisation"]
    name = "failing"
    gate: threading.Event | None = None
    #: Calls inside the model right now, and the most there ever were at once.
    inside = 0
    most_inside = 0
    counting = threading.Lock()

    def __init__(self, **identity: Any) -> None:
        super().__init__()

    def __call__(self, task_input: dict[str, Any], task: str = "", return_tensor: bool = False) -> Any:
        with Failing.counting:
            Failing.inside += 1
            Failing.most_inside = max(Failing.most_inside, Failing.inside)
        try:
            if Failing.gate is not None:
                Failing.gate.wait(30)
        finally:
            with Failing.counting:
                Failing.inside -= 1
        if "boom" in task_input["text"]:
            raise RuntimeError("boom")
        return [[float(len(text))] for text in task_input["text"]]


class FailingPlugin:
    @bpcore.hookimpl
    def register_models(self, register: Any) -> None:
        register(
            name="failing", factory="test_serve:Failing", tasks=["text-vectorisation"], description="fails"
        )


@pytest.fixture
def failing() -> Any:
    name = bpcore.register_plugin(FailingPlugin(), name="failing-plugin")
    Failing.most_inside = 0
    yield "failing"
    Failing.gate = None
    bpcore.unregister_plugin(name)


def test_a_model_failure_is_a_one_line_500_and_the_server_keeps_serving(failing):
    with running_server() as url:
        status, body, _ = call(f"{url}/v1/text-vectorisation", "POST", {"model": failing, "text": "boom"})
        assert status == 500 and "Traceback" not in str(body) and "\n" not in body["error"]["message"]
        status, body, _ = call(f"{url}/v1/text-vectorisation", "POST", {"model": failing, "text": "fine"})
        assert status == 200 and body["answer"] == [4.0]


def test_a_full_queue_is_503_with_retry_after(failing):
    import time
    from concurrent.futures import FIRST_COMPLETED, wait

    Failing.gate = threading.Event()
    with running_server(max_queue=1, max_batch_size=1, max_wait_ms=0, concurrent_batches=1) as url:
        body = {"model": failing, "text": "x"}
        with ThreadPoolExecutor(4) as pool:
            requests = [pool.submit(call, f"{url}/v1/text-vectorisation", "POST", body)]
            time.sleep(0.5)  # the first is in the model, held at the gate; one more may wait
            requests += [pool.submit(call, f"{url}/v1/text-vectorisation", "POST", body) for _ in range(3)]
            deadline = time.monotonic() + 20
            while sum(r.done() for r in requests) < 2 and time.monotonic() < deadline:
                wait(requests, timeout=0.1, return_when=FIRST_COMPLETED)
            Failing.gate.set()
            answers = [request.result() for request in requests]
    assert sorted(status for status, _, _ in answers) == [200, 200, 503, 503]
    assert all(headers.get("retry-after") == "1" for status, _, headers in answers if status == 503)


def test_the_next_batch_runs_while_one_is_in_the_model(failing):
    """Two batches in the model at once (the default): a second core works while the first is busy."""
    import time

    Failing.gate = threading.Event()
    with running_server(max_batch_size=1, max_wait_ms=0) as url:
        body = {"model": failing, "text": "x"}
        with ThreadPoolExecutor(3) as pool:
            requests = [pool.submit(call, f"{url}/v1/text-vectorisation", "POST", body) for _ in range(3)]
            deadline = time.monotonic() + 20
            while Failing.most_inside < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            both_inside = Failing.most_inside
            Failing.gate.set()
            answers = [request.result() for request in requests]
    assert both_inside == 2  # not 3: the server's default is two batches at a time
    assert [(status, body["answer"]) for status, body, _ in answers] == [(200, [1.0])] * 3


SENTIMENT = {
    "input_text": ["I really liked the service I received!", "Meh, it was not impressive."],
    "output_text": ["positive", "negative"],
}


@pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")
def test_finetune_upload_then_call_remotely_gives_the_finetuned_answers(saved):
    tg = bpcore.TextGeneration(saved["t2t"])
    tg.finetune(SENTIMENT, epochs=40, early_stopping_epochs=5, seed=0)
    assert tg(SENTIMENT["input_text"]) == ["positive", "negative"]
    with running_server(api_keys=[KEY]) as url:
        name = tg.upload("t5-sentiment", description="Predicts sentiment", api_key=KEY, url=url)
        remote = bpcore.TextGeneration(name, local=False, api_key=KEY, url=url)
        assert remote(SENTIMENT["input_text"]) == ["positive", "negative"]
        assert remote("Meh, it was not impressive.") == tg("Meh, it was not impressive.")
        _, listing, _ = call(f"{url}/v1/models", key=KEY)
        assert "t5-sentiment" in listing["uploaded"] and "t5-sentiment" in listing["loaded"]
        with pytest.raises(bpcore.InputError) as taken:
            tg.upload("t5-sentiment", api_key=KEY, url=url, overwrite=False)
        assert taken.value.field == "name"

        untrained = bpcore.TextGeneration(saved["t2t"])
        untrained.upload("t5-sentiment", api_key=KEY, url=url)  # replaces it, as save does
        assert remote("Meh, it was not impressive.") == untrained("Meh, it was not impressive.")

        assert call(f"{url}/v1/models/t5-sentiment", "DELETE", key=KEY)[0] == 200
        with pytest.raises(bpcore.ModelNotFoundError):
            remote("Meh")


def test_a_server_without_a_key_takes_no_uploads(saved):
    with running_server() as url:
        with pytest.raises(bpcore.errors.AuthenticationError):
            bpcore.TextVectorisation(saved["text"]).upload("anything", url=url)


def test_a_remote_task_finetunes_nothing_and_imports_no_torch(saved, tmp_path):
    import json
    import subprocess
    import sys

    script = (
        "import json, sys, bpcore\n"
        "tv = bpcore.TextVectorisation('saved-text', local=False, url=sys.argv[1])\n"
        "vector = tv('the cat sat on the mat')\n"
        "try:\n"
        "    tv.finetune({'texts': ['a', 'b'], 'groups': [0, 0]})\n"
        "except bpcore.TaskNotSupportedError as error:\n"
        "    refused = str(error)\n"
        "print(json.dumps({'vector': vector, 'torch': 'torch' in sys.modules, 'refused': refused}))\n"
    )
    with running_server() as url:
        done = subprocess.run(
            [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["torch"] is False and "local=True" in result["refused"]
    assert close(result["vector"], bpcore.TextVectorisation(saved["text"])("the cat sat on the mat"))


def crafted_uploads(folder: Path, tmp_path: Path) -> dict[str, Path]:
    """Archives of a real saved model, each with one hostile member added."""
    import tarfile

    from crafted_archives import file_info, folder_members, special_info, tar_archive, zeros_zip

    files = [file_info(name, content) for name, content in folder_members(folder)]
    return {
        "symlink": tar_archive(
            tmp_path / "a", [*files, special_info("leak", tarfile.SYMTYPE, "/etc/passwd")]
        ),
        "escape": tar_archive(tmp_path / "b", [*files, file_info("../outside.txt", b"x")]),
        "pickle": tar_archive(tmp_path / "c", [*files, file_info("model.bin", b"\x80\x04N.")]),
        "many files": tar_archive(
            tmp_path / "d", [*files, *(file_info(f"f{i}", b"") for i in range(10_000))]
        ),
        "zip bomb": zeros_zip(tmp_path / "e.zip"),
    }


def test_crafted_uploads_are_refused_with_4xx_and_nothing_written(saved, tmp_path, bpcore_home):
    folder = bpcore_home / saved["text"]
    before = sorted(p.name for p in bpcore_home.iterdir())
    with running_server(api_keys=[KEY]) as url:
        for kind, archive in crafted_uploads(folder, tmp_path).items():
            status, body, _ = call(f"{url}/v1/models?name=crafted", "POST", key=KEY, raw=archive.read_bytes())
            assert 400 <= status < 500 and "error" in body, (kind, status, body)
            assert sorted(p.name for p in bpcore_home.iterdir()) == before, kind
    assert not (tmp_path.parent / "outside.txt").exists()


def test_an_upload_or_delete_through_one_worker_reaches_the_others(saved):
    """Workers (and Ray replicas) share only BPCORE_HOME: each sees a model replaced or deleted by another."""
    first = bpcore.load(saved["text"])
    second = bpcore.load(saved["text"])
    with torch.no_grad():
        for parameter in second.parameters():
            parameter.add_(0.5)
    with running_server(api_keys=[KEY]) as a, running_server(api_keys=[KEY]) as b:
        on_b = bpcore.TextVectorisation("shared-model", local=False, api_key=KEY, url=b)
        bpcore.upload(first, name="shared-model", api_key=KEY, url=a)
        assert close(on_b(TEXTS), bpcore.TextVectorisation(first)(TEXTS))
        bpcore.upload(second, name="shared-model", api_key=KEY, url=a)
        assert close(on_b(TEXTS), bpcore.TextVectorisation(second)(TEXTS))
        assert call(f"{a}/v1/models/shared-model", "DELETE", key=KEY)[0] == 200
        with pytest.raises(bpcore.ModelNotFoundError):
            on_b(TEXTS)
