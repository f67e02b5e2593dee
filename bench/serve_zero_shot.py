"""Zero-shot image classification under load: ``bpcore serve`` vs LitServe over the same CLIP model.

8 concurrent clients, each sending one image per request with 50 labels, on its own keep-alive
connection. Two workloads: every request names the same 50 labels (an app with a fixed label set),
and every request names its own 50 labels (nothing to reuse; one request per client). bpcore's CLIP model caches a label
list's text features across requests and batches; the LitServe peer runs what a user writes with
open_clip alone, batching on (``max_batch_size=16``, 5 ms): per batch, the labels of each distinct
label list encoded with open_clip's ``build_zero_shot_classifier``, then the images. Both load the
same saved model (random ViT-S-32-alt weights, seeded, built offline), and every answer is checked
against an in-process bpcore call (probabilities within 1e-4).

    python bench/serve_zero_shot.py [--clients 8] [--requests 8] [--labels 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import load_average, machine
from serve_throughput import Server, free_port, group_cpu, ls, running

MODEL = "clip-bench"
ARCH = "ViT-S-32-alt"
TOLERANCE = 1e-4

if ls is not None:

    class PlainOpenClipAPI(ls.LitAPI):
        """open_clip's README zero-shot recipe as a LitServe API: labels encoded for every batch."""

        def setup(self, device: str) -> None:
            import bpcore

            self.clip = bpcore.load(str(Path(os.environ["BPCORE_HOME"]) / MODEL))

        def decode_request(
            self, request, **kwargs
        ):  # unannotated: LitServe reads the annotation as the body type
            from bpcore.images import base64_to_img

            return base64_to_img(request["image"]), tuple(request["labels"])

        def predict(self, x: list[tuple[Any, tuple[str, ...]]], **kwargs: Any) -> list[dict[str, float]]:
            import torch
            from open_clip.zero_shot_classifier import build_zero_shot_classifier

            from bp_clip.zero_shot import DEFAULT_LABEL_TEMPLATE

            clip, answers = self.clip, [{} for _ in x]
            with torch.inference_mode():
                pixels = torch.stack([clip.preprocess(image) for image, _ in x])
                features = clip.model.encode_image(pixels, normalize=True)
                scale = clip.model.logit_scale.exp().clamp(max=100.0)
                groups: dict[tuple[str, ...], list[int]] = {}
                for index, (_, labels) in enumerate(x):
                    groups.setdefault(labels, []).append(index)
                for labels, indices in groups.items():
                    classifier = build_zero_shot_classifier(
                        clip.model,
                        clip.tokenizer,
                        list(labels),
                        [DEFAULT_LABEL_TEMPLATE],
                        num_classes_per_batch=128,
                    )
                    rows = (scale * features[indices] @ classifier).softmax(dim=-1).tolist()
                    for index, row in zip(indices, rows):
                        answers[index] = dict(zip(labels, row))
            return answers

        def encode_response(self, output: dict[str, float], **kwargs: Any) -> dict[str, Any]:
            return {"answer": output}


def serve_litserve(port: int) -> None:
    if ls is None:
        raise SystemExit("litserve is not installed: pip install litserve")
    api = PlainOpenClipAPI(max_batch_size=16, batch_timeout=0.005)
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=1, timeout=300)
    server.run(host="127.0.0.1", port=port, generate_client_file=False, log_level="warning")


def save_model(home: Path) -> Any:
    """Random CLIP weights (seeded) saved as ``clip-bench`` under ``home``; the in-process model."""
    import torch

    import bpcore
    from bp_clip.model import CLIP

    os.environ["BPCORE_HOME"] = str(home)
    torch.manual_seed(0)
    model = CLIP(ARCH, pretrained=None, device="cpu")
    bpcore.save(model, name=MODEL)
    return bpcore.ImageClassification(MODEL)


def images(count: int) -> list[str]:
    from PIL import Image

    rng, encoded = np.random.default_rng(0), []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), "RGB").save(buffer, "PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return encoded


def requests_for(clients: int, per_client: int, labels: int, same: bool) -> list[list[tuple[str, list[str]]]]:
    """``[client][i] = (image, labels)``: one label list for all, or each request its own."""
    pictures = images(clients * per_client)
    fixed = [f"object category number {i}" for i in range(labels)]
    work = []
    for c in range(clients):
        own = []
        for r in range(per_client):
            number = c * per_client + r
            names = fixed if same else [f"request {number} category {i}" for i in range(labels)]
            own.append((pictures[number], names))
        work.append(own)
    return work


def run_round(
    server: Server, work: list[list[tuple[str, list[str]]]]
) -> tuple[float, list[float], list[Any], float]:
    """All clients at once; ``(seconds, latencies, answers per client, server CPU seconds)``."""
    answers: list[list[Any]] = [[] for _ in work]
    latencies: list[float] = []
    start = threading.Barrier(len(work) + 1)

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        conn.connect()
        start.wait()
        for image, labels in work[index]:
            body = {"image": image, "labels": labels}
            if server.name.startswith("bpcore"):
                body["model"] = MODEL
            sent = time.perf_counter()
            conn.request("POST", server.path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            latencies.append(time.perf_counter() - sent)
            answers[index].append(json.loads(data).get("answer") if response.status == 200 else data)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(work))]
    for thread in threads:
        thread.start()
    cpu = group_cpu(server)
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, answers, group_cpu(server) - cpu


def wrong_answers(work: list[list[tuple[str, list[str]]]], answers: list[list[Any]], direct: Any) -> int:
    from bpcore.images import base64_to_img

    wrong = 0
    errors = [answer for own in answers for answer in own if not isinstance(answer, dict)]
    if errors:
        print(f"    ERROR {errors[0]!r:.300}")
    for own_work, own_answers in zip(work, answers):
        for (image, labels), answer in zip(own_work, own_answers):
            expected = direct(base64_to_img(image), labels)
            if not isinstance(answer, dict) or answer.keys() != expected.keys():
                wrong += 1
            elif max(abs(answer[k] - expected[k]) for k in labels) > TOLERANCE:
                wrong += 1
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=8, help="requests per client per round")
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve-litserve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # open_clip warns that the weights are random
    if args.serve_litserve:
        serve_litserve(args.serve_litserve)
        return

    with tempfile.TemporaryDirectory(prefix="bpcore-zero-shot-bench-") as scratch:
        home = Path(scratch) / "home"
        direct = save_model(home)
        port = free_port()
        bpcore_server = Server(
            "bpcore",
            [str(Path(sys.executable).with_name("bpcore")), "serve", "--model", MODEL, "--port", str(port)],
            "/v1/image-classification",
            "/readyz",
            port,
            env={"BPCORE_HOME": str(home)},
        )
        servers = [bpcore_server]
        if ls is not None:
            port = free_port()
            command = [sys.executable, str(Path(__file__).resolve()), "--serve-litserve", str(port)]
            servers.append(
                Server("litserve", command, "/predict", "/health", port, env={"BPCORE_HOME": str(home)})
            )
        else:
            print("litserve is not installed (pip install litserve): bpcore only")
        print(
            f"zero-shot under load, {ARCH} (random weights): {args.clients} clients × {args.requests} requests, 1 image and {args.labels} labels each"
        )
        print(f"  machine: {machine()}; load average before: {load_average()}; 1 torch thread per server")
        measure(servers, args, direct)


def measure(servers: list[Server], args: argparse.Namespace, direct: Any) -> None:
    workloads = {
        "same labels": requests_for(args.clients, args.requests, args.labels, same=True),
        # One request per client: encoding a new label list is most of a request's work.
        "own labels": requests_for(args.clients, 1, args.labels, same=False),
    }
    rates: dict[tuple[str, str], list[float]] = {}
    with running(servers, threads=1):
        for server in servers:  # warm-up: the first batch, and the cache of the fixed label list
            run_round(server, [client[:1] for client in workloads["same labels"]])
        for number in range(args.rounds):
            for name, work in workloads.items():
                for server in servers:
                    seconds, latencies, answers, cpu = run_round(server, work)
                    wrong = wrong_answers(work, answers, direct)
                    rate = len(latencies) / seconds
                    rates.setdefault((server.name, name), []).append(rate)
                    ordered = sorted(latencies)
                    p50, p99 = (
                        ordered[len(ordered) // 2],
                        ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
                    )
                    print(
                        f"  round {number + 1} {server.name:<9} {name:<11}: {rate:6.1f} req/s  p50 {p50 * 1000:6.0f} ms  "
                        f"p99 {p99 * 1000:6.0f} ms, {cpu / seconds:.2f} cores, {wrong} wrong of {len(latencies)}",
                        flush=True,
                    )
    print()
    for name in workloads:
        mine = statistics.median(rates[("bpcore", name)])
        line = f"{name:<11}: bpcore {mine:6.1f} req/s"
        if ("litserve", name) in rates:
            theirs = statistics.median(rates[("litserve", name)])
            line += f", LitServe + plain open_clip {theirs:6.1f} req/s, {mine / theirs:.2f}×"
        print(line)
    same, own = (statistics.median(rates[("bpcore", n)]) for n in workloads)
    print(f"bpcore with the label cache holding across requests: {same / own:.1f}× its own-labels rate")
    print(f"  load average after: {load_average()}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
