"""What the benchmarks share: the words their sentences are made of, timing, and the machine they ran on.

Every figure in ``RESULTS.md`` names its CPU and whether it has native bf16 (:func:`machine`),
and a figure measured beside other work says so (:func:`load_average`).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

WORDS = (
    "phone case cable charger steel mug coffee tea hammer crowbar screen battery fast slow red blue "
    "black white large small new used cheap premium wireless wooden ceramic glass metal plastic the a "
    "with for and of in on this that my our great good bad broken works well"
).split()


def sentences(count: int, seed: int = 0, words: tuple[int, int] = (5, 60)) -> list[str]:
    """``count`` sentences of ``words`` words each (inclusive bounds), the same for the same seed."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(*words))) for _ in range(count)]


def best_of_rounds(paths: Mapping[str, Callable[[], T]], runs: int) -> dict[str, tuple[float, T]]:
    """Each path's fastest time over ``runs`` rounds and its last result.

    Every path runs once per round, in turn, after one warm-up call each (allocators, first
    shapes): load that drifts during a run then reaches every path alike.
    """
    for work in paths.values():
        work()
    times: dict[str, list[float]] = {name: [] for name in paths}
    results: dict[str, T] = {}
    for _ in range(runs):
        for name, work in paths.items():
            start = time.perf_counter()
            results[name] = work()
            times[name].append(time.perf_counter() - start)
    return {name: (min(times[name]), results[name]) for name in paths}


def best_of(runs: int, work: Callable[[], T]) -> tuple[float, T]:
    """One path's fastest time over ``runs`` calls after a warm-up, and its last result."""
    return best_of_rounds({"work": work}, runs)["work"]


def machine() -> str:
    """The CPU model, its native bf16 flags (AMX, avx512-bf16) or their absence, and the core count."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    flags = ""
    with contextlib.suppress(OSError):
        found = set(re.findall(r"\b(amx_\w+|avx512_bf16)\b", Path("/proc/cpuinfo").read_text()))
        flags = ", ".join(sorted(found)) or "no avx512_bf16, no AMX"
    return f"{cpu} ({flags}), {os.cpu_count()} cores"


def load_average() -> str:
    """The 1, 5 and 15-minute load averages: above the core count, the figures were measured loaded."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
