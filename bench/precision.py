"""Inference precision: bpcore fp32 / bf16 / auto vs sentence-transformers fp32 and bf16, in one run.

1,000 mixed-length sentences (5 to 60 words), all-MiniLM-L6-v2, 1 torch thread, best of 3.
sentence-transformers bf16 is ``model.to(torch.bfloat16)`` (the user converts their model);
bpcore's bf16 runs under ``torch.autocast`` and leaves the model as it was. ``auto`` is bf16 only
where the CPU has AMX or avx512-bf16, so on other CPUs it must equal fp32. Each path's smallest
cosine against sentence-transformers fp32 is printed beside its speed. The CPU and its bf16 flags
come first: bf16 pays only where the hardware computes it.

    python bench/precision.py [--sentences 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Callable

import torch
from common import best_of, machine, sentences

import bpcore


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("BPCORE_LOAD_PLUGINS", "st")
    texts = sentences(args.sentences)

    fp32_task = bpcore.TextVectorisation("all-minilm-l6-v2", device="cpu")
    st = fp32_task.model.model  # the SentenceTransformer inside bp-st's model
    st_bf16 = copy.deepcopy(st).to(torch.bfloat16)
    paths: dict[str, Callable[[], torch.Tensor]] = {
        "sentence-transformers fp32": lambda: st.encode(texts, batch_size=32, convert_to_tensor=True),
        "sentence-transformers bf16 (model.to)": lambda: st_bf16.encode(
            texts, batch_size=32, convert_to_tensor=True
        ),
    }
    for precision in ("fp32", "bf16", "auto"):
        task = bpcore.TextVectorisation(fp32_task.model, precision=precision)
        paths[f"bpcore {precision} (runs {task.precision})"] = lambda task=task: task(
            texts, return_tensor=True
        )

    print(f"text vectorisation, {len(texts)} sentences, all-MiniLM-L6-v2, {args.threads} torch thread(s)")
    print(f"  machine: {machine()}")
    results = {name: best_of(args.runs, work) for name, work in paths.items()}
    base_seconds, base = results["sentence-transformers fp32"]
    for name, (seconds, vectors) in results.items():
        cosine = torch.nn.functional.cosine_similarity(vectors.float(), base.float()).min().item()
        print(
            f"  {name:<40} {len(texts) / seconds:7.1f} sentences/s  {base_seconds / seconds:5.2f}× "
            f"sentence-transformers fp32, min cosine {cosine:.6f}"
        )


if __name__ == "__main__":
    main()
