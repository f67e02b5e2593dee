"""Batch inference over a file: ``bpcore run --data`` vs the in-process call on the same rows.

MiniLM text vectorisation (all-MiniLM-L6-v2, bundled with bp-st) of short rows (3 to 12
words). Each measurement runs in a fresh process with the same torch threads
(``OMP_NUM_THREADS``, default 1), in rounds that alternate the two (A B A B ...):

  call       ``bpcore.TextVectorisation()(texts)``: every row in one call, the answers kept
             in memory (timed from the model being ready to the last answer)
  bpcore run ``bpcore run text-vectorisation --data rows.jsonl --out out.jsonl --quiet``: reads,
             answers ``--batch-size`` rows per model call and writes them (its answering time is
             the one its summary line reports; its wall time with start and model load is shown too)

The ratio is the call's time over the runner's (the median of the rounds' own ratios). The
peak memory (max RSS) of each process is reported, and the runner's also on a quarter of the
rows: the runner's stays flat in the number of rows, the call's grows with it.

    python bench/run_file.py                              # 20,000 rows, 2 rounds
    python bench/run_file.py --rows 2000 --rounds 1       # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "phone case cable charger steel mug coffee tea hammer crowbar screen battery fast slow red blue "
    "black white large small new used cheap premium wireless wooden ceramic glass metal plastic"
).split()
CALL = """
import json, resource, sys, time
import bpcore
texts = [json.loads(line)["text"] for line in open(sys.argv[1])]
tv = bpcore.TextVectorisation("all-minilm-l6-v2", device="cpu")
tv(texts[:64])  # warm: the first call pays for lazy set-up
start = time.perf_counter()
vectors = tv(texts)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": len(vectors)}))
"""
SUMMARY = re.compile(r"answered (\d+) rows.*? in ([\d.]+)s")


def write_rows(path: Path, count: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for index in range(count):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
            handle.write(json.dumps({"id": index, "text": text}) + "\n")
    return path


def measured(command: list[str], env: dict[str, str]) -> tuple[float, int, str, str]:
    """Run ``command``: its wall seconds, its peak RSS in MiB, its stdout and stderr."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        sys.exit(f"{command[:3]} failed ({process.returncode}):\n{stderr[-2000:]}")
    return wall, usage.ru_maxrss // 1024, stdout, stderr


def call(data: Path, env: dict[str, str]) -> tuple[float, int]:
    _, peak, stdout, _ = measured([sys.executable, "-c", CALL, str(data)], env)
    return json.loads(stdout)["seconds"], peak


def run(data: Path, out: Path, batch_size: int, env: dict[str, str]) -> tuple[float, float, int]:
    """``bpcore run --data``: its answering seconds (from its summary), wall seconds, peak RSS."""
    out.unlink(missing_ok=True)
    bpcore = str(Path(sys.executable).parent / "bpcore")
    command = [bpcore, "run", "text-vectorisation", "--data", str(data), "--out", str(out)]
    wall, peak, _, stderr = measured([*command, "--batch-size", str(batch_size)], env)
    match = SUMMARY.search(stderr)
    if match is None:
        sys.exit(f"no summary line from bpcore run:\n{stderr[-2000:]}")
    return float(match[2]), wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256, help="bpcore run --batch-size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each process")
    args = parser.parse_args()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with tempfile.TemporaryDirectory() as folder:
        data = write_rows(Path(folder) / "rows.jsonl", args.rows)
        quarter = write_rows(Path(folder) / "quarter.jsonl", args.rows // 4)
        out = Path(folder) / "out.jsonl"
        calls, runs, ratios = [], [], []
        for _ in range(args.rounds):
            calls.append(call(data, env))
            runs.append(run(data, out, args.batch_size, env))
            ratios.append(calls[-1][0] / runs[-1][0])
            assert sum(1 for _ in open(out)) == args.rows
        small = run(quarter, out, args.batch_size, env)
    report(args, calls, runs, ratios, small)


def report(
    args: argparse.Namespace,
    calls: list[tuple[float, int]],
    runs: list[tuple[float, float, int]],
    ratios: list[float],
    small: tuple[float, float, int],
) -> None:
    call_s = statistics.median(seconds for seconds, _ in calls)
    run_s = statistics.median(seconds for seconds, _, _ in runs)
    wall_s = statistics.median(wall for _, wall, _ in runs)
    print(
        f"bpcore run --data vs the in-process call: {args.rows} short rows, all-MiniLM-L6-v2, "
        f"{args.threads} torch thread(s), --batch-size {args.batch_size}, {args.rounds} round(s)"
    )
    print(f"  call        {args.rows / call_s:8.1f} rows/s  peak {max(peak for _, peak in calls)} MiB")
    print(
        f"  bpcore run  {args.rows / run_s:8.1f} rows/s  peak {max(peak for *_, peak in runs)} MiB "
        f"(wall {wall_s:.1f}s with start and model load)"
    )
    print(
        f"  ratio bpcore run / call = {statistics.median(ratios):.3f}x  (rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
    )
    print(
        f"  bpcore run peak on {args.rows // 4} rows: {small[2]} MiB (on {args.rows}: {max(p for *_, p in runs)} MiB)"
    )


if __name__ == "__main__":
    main()
