"""What DDP's unused-parameter search costs: a two-process finetune with and without it, in one run.

bpcore turns on ``find_unused_parameters`` only when the model has parameters the loss never
reaches (one probe step finds out, or the model declares it). all-MiniLM-L6-v2's only such
weights are BERT's pooler; frozen here, the model has none, so bpcore runs without the search;
the peer run forces it on (``model.find_unused_parameters = True``), as bpcore always did
before. Same data, seed and batches; two CPU processes under torchrun (gloo).

    python bench/ddp_unused_parameters.py [--pairs 96] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(mode: str, pairs: int, out: Path) -> None:
    import torch

    import bpcore

    torch.manual_seed(0)
    tv = bpcore.TextVectorisation("all-minilm-l6-v2", device="cpu")
    for name, parameter in tv.model.named_parameters():
        if ".pooler." in name:  # sentence-transformers never uses BERT's pooler output
            parameter.requires_grad_(False)
    if mode == "forced":
        tv.model.find_unused_parameters = True
    words = "phone case cable charger steel mug coffee tea hammer screen battery red blue black white".split()
    texts1 = [" ".join(words[(i + k) % len(words)] for k in range(6)) for i in range(pairs)]
    texts2 = [" ".join(words[(i * 3 + k) % len(words)] for k in range(5)) for i in range(pairs)]
    scores = [round((i % 10) / 10, 1) for i in range(pairs)]
    params = {"texts1": texts1, "texts2": texts2, "similarity_scores": scores}
    start = time.perf_counter()
    history = tv.finetune(params, epochs=2, batch_size=16, early_stopping_epochs=0, seed=0, progress=False)
    seconds = time.perf_counter() - start
    if os.environ.get("RANK", "0") == "0":
        out.write_text(json.dumps({"seconds": seconds, "val_loss": history.val_loss}))


def launch(mode: str, pairs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        args = [__file__, "--worker", mode, "--pairs", str(pairs), "--out", str(out)]
        subprocess.run([*command, *args], check=True, env=env, capture_output=True)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=["detected", "forced"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.pairs, args.out)
        return
    runs: dict[str, list[dict]] = {"detected": [], "forced": []}
    for _ in range(args.repeat):
        for mode in runs:  # alternate, so machine load falls on both alike
            runs[mode].append(launch(mode, args.pairs))
    seconds = {mode: statistics.median(run["seconds"] for run in results) for mode, results in runs.items()}
    difference = max(
        abs(a - b) for a, b in zip(runs["detected"][0]["val_loss"], runs["forced"][0]["val_loss"])
    )
    print(f"two-process cosine finetune of all-MiniLM-L6-v2, {args.pairs} pairs, 2 epochs, batch 16, CPU")
    print(f"  bpcore (search off, detected): {seconds['detected']:.2f} s   (median of {args.repeat})")
    print(f"  find_unused_parameters=True:   {seconds['forced']:.2f} s")
    print(
        f"  speed-up from detecting: {seconds['forced'] / seconds['detected']:.3f}x   val losses differ by {difference:.1e}"
    )


if __name__ == "__main__":
    main()
