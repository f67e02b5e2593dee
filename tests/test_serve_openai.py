"""The official openai client against a real bpcore server: OpenAI's shapes, the direct calls' answers, clean errors."""

from __future__ import annotations

import base64
import math
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import torch
from serve_helpers import call, running_server

import bpcore

KEY = "test-key"
TEXTS = ["the cat sat on the mat", "bread is baked in an oven", "a quiet afternoon"]


@pytest.fixture
def saved(bpcore_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny models saved by name under BPCORE_HOME, so the server and the test load the same weights.

    Saved once for the module and copied into each test's home: saving lists the installed
    distributions, seconds a save.
    """
    names = {"text": "saved-text", "t2t": "saved-t2t"}
    cache = tmp_path_factory.getbasetemp() / "serve-openai-models"
    if cache.is_dir():
        shutil.copytree(cache, bpcore_home, dirs_exist_ok=True)
        return names
    torch.manual_seed(0)
    from core_helpers import TinyPlugin

    plugin = bpcore.register_plugin(TinyPlugin(), name="serve-openai-tiny")
    try:
        for kind, name in names.items():
            bpcore.save(bpcore.models.AutoModel.from_pretrained(f"tiny-{kind}"), name=name)
    finally:
        bpcore.unregister_plugin(plugin)
    shutil.copytree(bpcore_home, cache)
    return names


def client_for(url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def close(a: Any, b: Any) -> bool:
    """Equal vectors to 1e-5 (base64 carries float32), lists of them elementwise."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-6)


def words(texts: list[str]) -> int:
    """The tiny models hold no tokenizer: the server counts whitespace-separated words."""
    return sum(len(text.split()) for text in texts)


def test_embeddings_equal_the_direct_call_as_floats_and_as_base64(saved):
    model = saved["text"]
    direct = bpcore.TextVectorisation(model)
    with running_server(api_keys=[KEY]) as url:
        client = client_for(url)
        one = client.embeddings.create(model=model, input=TEXTS[0], encoding_format="float")
        assert [item.index for item in one.data] == [0] and one.object == "list"
        assert one.data[0].object == "embedding" and one.model == model
        assert close(one.data[0].embedding, direct(TEXTS[0]))
        assert one.usage.prompt_tokens == one.usage.total_tokens == words(TEXTS[:1])

        # Asked for explicitly, base64 comes back as sent: little-endian float32 bytes.
        raw = client.embeddings.create(model=model, input=TEXTS, encoding_format="base64")
        decoded = [np.frombuffer(base64.b64decode(item.embedding), dtype="<f4").tolist() for item in raw.data]
        assert close(decoded, direct(TEXTS))
        assert raw.usage.prompt_tokens == words(TEXTS)

        # No format given: the client asks for base64 and decodes it with numpy itself.
        default = client.embeddings.create(model=model, input=TEXTS)
        assert [item.index for item in default.data] == [0, 1, 2]
        assert close([item.embedding for item in default.data], direct(TEXTS))

        # The server's own default is float, as OpenAI's API documents it.
        status, body, _ = call(f"{url}/v1/embeddings", "POST", {"model": model, "input": TEXTS[:2]}, KEY)
        assert status == 200 and close([item["embedding"] for item in body["data"]], direct(TEXTS[:2]))
        size = len(body["data"][0]["embedding"])
        same = client.embeddings.create(model=model, input=TEXTS[0], dimensions=size, encoding_format="float")
        assert close(same.data[0].embedding, direct(TEXTS[0]))


def test_completions_equal_the_direct_call(saved):
    model = saved["t2t"]
    direct = bpcore.TextGeneration(model)
    with running_server(api_keys=[KEY]) as url:
        client = client_for(url)
        answer = client.completions.create(model=model, prompt=TEXTS[:2], max_tokens=8, temperature=0.0)
        expected = direct(TEXTS[:2], max_length=8, temperature=0.0)
        assert [choice.text for choice in answer.choices] == expected
        assert [choice.index for choice in answer.choices] == [0, 1]
        assert answer.object == "text_completion" and answer.id.startswith("cmpl-") and answer.model == model
        assert all(choice.logprobs is None for choice in answer.choices)
        assert [choice.finish_reason for choice in answer.choices] == [
            "length" if len(text.split()) >= 8 else "stop" for text in expected
        ]
        assert answer.usage.prompt_tokens == words(TEXTS[:2])
        assert answer.usage.completion_tokens == words(expected)
        assert answer.usage.total_tokens == words(TEXTS[:2]) + words(expected)

        one = client.completions.create(model=model, prompt=TEXTS[0], max_tokens=1)
        assert [choice.text for choice in one.choices] == [direct(TEXTS[0], max_length=1)]
        assert one.choices[0].finish_reason == "length"  # one character: one word, the limit

        several = client.completions.create(model=model, prompt=TEXTS[:2], n=2, max_tokens=8)
        generations = direct(TEXTS[:2], num_generations=2, max_length=8)
        assert [choice.text for choice in several.choices] == [text for pair in generations for text in pair]
        assert [choice.index for choice in several.choices] == [0, 1, 2, 3]

        # OpenAI's defaults, sent explicitly (as LangChain does), ask for nothing: the same answer.
        defaults = client.completions.create(
            model=model,
            prompt=TEXTS[:2],
            max_tokens=8,
            temperature=0.0,
            top_p=1,
            n=1,
            best_of=1,
            echo=False,
            stream=False,
            stop=None,
            logprobs=None,
            frequency_penalty=0,
            presence_penalty=0,
            logit_bias={},
            user="someone",
        )
        assert [choice.text for choice in defaults.choices] == expected


def test_fields_the_server_cannot_honour_are_refused_by_name(saved):
    with running_server() as url:
        client = client_for(url)
        refused: list[tuple[str, dict[str, Any]]] = [
            ("stop", {"stop": ["\n"]}),
            ("stream", {"stream": True}),
            ("logprobs", {"logprobs": 2}),
            ("echo", {"echo": True}),
            ("presence_penalty", {"presence_penalty": 0.5}),
            ("suffix", {"suffix": "end"}),
            ("colour", {"extra_body": {"colour": "blue"}}),
        ]
        for field, options in refused:
            with pytest.raises(openai.UnprocessableEntityError) as error:
                client.completions.create(model=saved["t2t"], prompt="a", **options)
            assert error.value.param == field and error.value.code == "unsupported_parameter", field
            assert f"{field}: " in str(error.value)

        for tokens in ([1, 2, 3], [[1, 2], [3]]):
            with pytest.raises(openai.UnprocessableEntityError) as error:
                client.embeddings.create(model=saved["text"], input=tokens)
            assert error.value.param == "input" and "check_embedding_ctx_length=False" in str(error.value)
        with pytest.raises(openai.UnprocessableEntityError) as error:
            client.embeddings.create(model=saved["text"], input="a", dimensions=3)
        assert error.value.param == "dimensions" and "16 dimensions" in str(error.value)
        with pytest.raises(openai.UnprocessableEntityError) as error:
            client.embeddings.create(model=saved["text"], input="a", encoding_format="int8")  # type: ignore[arg-type]
        assert error.value.param == "encoding_format"


def test_errors_raise_the_clients_own_exceptions_with_our_message(saved):
    with running_server(api_keys=[KEY]) as url:
        client = client_for(url)
        with pytest.raises(openai.UnprocessableEntityError) as error:
            client.completions.create(model=saved["t2t"], prompt="a", max_tokens=0)
        assert error.value.param == "max_tokens" and "max_tokens: must be positive, got 0" in str(error.value)
        with pytest.raises(openai.UnprocessableEntityError) as error:
            client.embeddings.create(model=saved["text"], input=["fine", 3])  # type: ignore[list-item]
        assert error.value.param == "input[1]" and "expected a string, got int" in str(error.value)
        with pytest.raises(openai.UnprocessableEntityError) as error:
            client.embeddings.create(model=saved["t2t"], input="a")  # a generator does not vectorise
        assert error.value.param == "model" and "text-vectorisation" in str(error.value)
        with pytest.raises(openai.NotFoundError) as error:
            client.embeddings.create(model="no-such-model", input="a")
        assert error.value.code == "model_not_found" and "no model 'no-such-model'" in str(error.value)
        with pytest.raises(openai.AuthenticationError) as error:
            client_for(url, key="wrong").completions.create(model=saved["t2t"], prompt="a")
        assert error.value.code == "invalid_api_key" and "missing or wrong API key" in str(error.value)

        status, body, headers = call(f"{url}/v1/embeddings", "POST", {"model": saved["text"], "input": "a"})
        assert status == 401 and headers.get("www-authenticate") == "Bearer"
        assert sorted(body["error"]) == ["code", "message", "param", "type"]
        status, body, _ = call(f"{url}/v1/completions", "POST", raw=b"{not json", key=KEY)
        assert status == 422 and body["error"]["param"] == "body"
        assert body["error"]["type"] == "invalid_request_error"


def test_the_model_list_answers_in_both_shapes(saved):
    with running_server(api_keys=[KEY]) as url:
        cards = list(client_for(url).models.list())
        status, native, _ = call(f"{url}/v1/models", key=KEY)
    assert {"saved-text", "saved-t2t"} <= {card.id for card in cards}
    assert all(card.object == "model" and card.owned_by and card.created > 0 for card in cards)
    assert status == 200 and native["object"] == "list"
    assert {"models", "loaded", "uploaded"} <= native.keys() and "saved-text" in native["uploaded"]


# -- one batch for both routes, and token counts by a real tokenizer ----------------------------------


def word_tokenizer() -> Any:
    """A real transformers fast tokenizer: one token a word, ``[CLS] ... [SEP]`` around, truncating at 3."""
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "the": 4, "cat": 5, "sat": 6}
    backend = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    backend.enable_truncation(max_length=3)
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")


class Gated(torch.nn.Module):
    """Vectorises a text as its length; waits on ``gate`` if one is set; holds a transformers tokenizer."""

    tasks = ["text-vectorisation"]
    name = "gated"
    gate: threading.Event | None = None
    tokenizer: Any = None

    def __init__(self, **identity: Any) -> None:
        super().__init__()

    def __call__(self, task_input: dict[str, Any], task: str = "", return_tensor: bool = False) -> Any:
        if Gated.gate is not None:
            Gated.gate.wait(30)
        return [[float(len(text))] for text in task_input["text"]]


class GatedPlugin:
    @bpcore.hookimpl
    def register_models(self, register: Any) -> None:
        register(
            name="gated", factory="test_serve_openai:Gated", tasks=["text-vectorisation"], description="held"
        )


@pytest.fixture
def gated() -> Iterator[str]:
    Gated.tokenizer = word_tokenizer()
    plugin = bpcore.register_plugin(GatedPlugin(), name="gated-plugin")
    yield "gated"
    Gated.gate, Gated.tokenizer = None, None
    bpcore.unregister_plugin(plugin)


def test_openai_and_native_calls_share_model_calls(gated):
    Gated.gate = threading.Event()
    # One batch at a time: the next one gathers both routes' requests while the first is held.
    with running_server(max_wait_ms=0, max_batch_size=8, concurrent_batches=1) as url:
        client, route = client_for(url), f"{url}/v1/text-vectorisation"
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(call, route, "POST", {"model": gated, "text": "held"})
            time.sleep(0.5)  # the first is in the model, held at the gate
            native = pool.submit(call, route, "POST", {"model": gated, "text": "the cat"})
            other = pool.submit(
                client.embeddings.create, model=gated, input="the cat sat", encoding_format="float"
            )
            time.sleep(0.5)  # both wait for the next model call
            Gated.gate.set()
            (_, held, _), (_, body, _), embedded = first.result(), native.result(), other.result()
        _, metrics, _ = call(f"{url}/metrics")
    assert held["answer"] == [4.0] and body["answer"] == [7.0] and embedded.data[0].embedding == [11.0]
    labels = f'{{model="{body["model"]}",task="text-vectorisation"}}'
    assert f"bpcore_batch_items_count{labels} 2.0" in metrics  # two model calls for three requests
    assert f"bpcore_batch_items_sum{labels} 3.0" in metrics


def test_usage_counts_with_the_models_own_tokenizer_and_leaves_it_untouched(gated):
    truncation = Gated.tokenizer.backend_tokenizer.truncation
    with running_server() as url:
        answer = client_for(url).embeddings.create(model=gated, input=["the cat sat on the mat", "the cat"])
    # [CLS] and [SEP] around each text's words, none cut off: 8 + 4 tokens (words alone: 8).
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == 12
    assert Gated.tokenizer.backend_tokenizer.truncation == truncation
