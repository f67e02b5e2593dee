"""A user's finetuning script, run by the scale-out tests as a subprocess (one or several processes).

    python scale_script.py VARIANT OUT [--checkpoint-dir DIR] [--resume] [--die-after-batches N]

Writes ``OUT/rank<R>.json`` (history, process count) on every process and, from the main
process, ``OUT/weights.safetensors``. ``--die-after-batches N`` kills the process (SIGKILL,
nothing flushed, nothing cleaned up) when its step runs for the N-th time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tiny_models import TinyTextModel  # noqa: E402

import bpcore  # noqa: E402

TOPICS = {
    "politics": [
        "parliament passed the bill",
        "the senate votes today",
        "the minister resigned",
        "a new tax law",
    ],
    "science": [
        "a physics paper",
        "the telescope saw a comet",
        "lab experiment on cells",
        "chemists found it",
    ],
    "film": ["the film won awards", "a comedy movie", "the actor smiled", "cinema tickets sold out"],
    "sport": ["the team scored a goal", "a tennis final", "the coach was fired", "runners crossed the line"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=["plain", "triplet"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--die-after-batches", type=int)
    args = parser.parse_args()

    texts = [f"{text} {suffix}" for topic in TOPICS.values() for text in topic for suffix in ("", "again")]
    labels = [label for label, topic in TOPICS.items() for _ in topic for _ in range(2)]
    torch.manual_seed(0)
    model = TinyTextModel()
    steps = [0]
    if args.die_after_batches:
        # Count every step (training and validation); die abruptly at the N-th.
        original = model.training_step

        def training_step(batch, task):
            steps[0] += 1
            if steps[0] == args.die_after_batches:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(batch, task)

        model.training_step = training_step
    options = {"epochs": 4, "early_stopping_epochs": 0, "batch_size": 8, "seed": 3, "progress": False}
    options |= {"lr_scheduler": "linear", "warmup_ratio": 0.2, "max_grad_norm": 5.0}
    if args.checkpoint_dir:
        options |= {"checkpoint_dir": args.checkpoint_dir, "resume": args.resume}
    if args.variant == "plain":
        task = bpcore.TextClassification(model)
        history = task.finetune({"texts": texts, "labels": labels}, validation_split=0.25, **options)
    else:
        task = bpcore.TextVectorisation(model)
        history = task.finetune(
            {"texts": texts, "groups": labels}, variant="triplet", validation_split=0.3, **options
        )
    rank = os.environ.get("RANK", "0")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"rank{rank}.json").write_text(json.dumps(history.as_dict()))
    if rank == "0":
        save_file(
            {key: value.contiguous() for key, value in model.state_dict().items()},
            str(args.out / "weights.safetensors"),
        )
    # Every rank leaves the process group before exiting: a rank still in it when another exits
    # can abort ("terminate called without an active exception") after its results are written.
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # Interpreter teardown of torch's distributed threads can still abort a rank ("terminate
    # called without an active exception", exit -6) after everything is written and the group
    # is left: end the process without it, as the results are already on disk.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
