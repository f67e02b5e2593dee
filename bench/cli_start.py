"""Command-line start-up: `bpcore list-models` and `bpcore plugins` vs. `python -c pass`, in one run.

Also proves that listing imports no torch.

    python bench/cli_start.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def best_of(repeat: int, command: list[str]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    python = [sys.executable]
    baseline = best_of(args.repeat, [*python, "-c", "pass"])
    print(f"python -c pass              {baseline:6.3f} s")
    for command in (["list-models"], ["plugins"]):
        seconds = best_of(args.repeat, [*python, "-m", "bpcore.cli", *command])
        print(f"bpcore {command[0]:<20} {seconds:6.3f} s   ({seconds / baseline:.1f}x python -c pass)")
    check = "import sys, bpcore; from bpcore.models import AutoModel; AutoModel.list_models(); print('torch' in sys.modules)"
    imported = subprocess.run(
        [*python, "-c", check], check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"listing models imported torch: {imported}")


if __name__ == "__main__":
    main()
