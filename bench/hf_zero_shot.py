"""Zero-shot text classification: bpcore vs. transformers' pipeline and a hand-written sorted loop, in one run.

The same locally built NLI model (a 6-layer BERT with random weights and a tokenizer trained
offline; labels in the order contradiction, neutral, entailment), the same texts x labels, the
same hypothesis template. Checks that every peer gives the same scores, then prints the times
and ratios. The hand-written loop tokenises every pair once, sorts by length and runs batches
of 32: the compute-bound limit bpcore should be within 5% of.

    python bench/hf_zero_shot.py [--texts 200] [--labels 10] [--hidden 128] [--repeat 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "bp_hf" / "tests"))

LABELS = "sports politics weather music film food science travel health business".split()


def texts(count: int, seed: int = 0) -> list[str]:
    from tiny_hf import WORDS

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) for _ in range(count)]


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def sorted_loop(model, tokenizer, items, labels, batch_size=32):
    """The hand-written peer: every pair tokenised once, sorted by length, batched, softmax per text."""
    template = "This example is {}."
    premises = [text for text in items for _ in labels]
    hypotheses = [template.format(label) for _ in items for label in labels]
    encoded = tokenizer(premises, hypotheses, truncation="only_first")
    order = sorted(range(len(premises)), key=lambda i: len(encoded["input_ids"][i]), reverse=True)
    entailment = model.config.label2id["entailment"]
    logits = torch.empty(len(premises))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer.pad([{k: encoded[k][i] for k in encoded} for i in chunk], return_tensors="pt")
            logits[chunk] = model(**batch).logits[:, entailment]
    scores = logits.view(len(items), len(labels)).softmax(dim=1)
    return [dict(zip(labels, row.tolist())) for row in scores]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from tiny_hf import tiny_bert_folder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    import bpcore
    from bp_hf import HFNLIModel

    folder = tiny_bert_folder(Path(tempfile.mkdtemp()) / "nli", num_layers=6, hidden_size=args.hidden)
    items, labels = texts(args.texts), LABELS[: args.labels]
    tc = bpcore.TextClassification(HFNLIModel(folder, device="cpu"))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    classifier = pipeline("zero-shot-classification", model=model, tokenizer=tokenizer, device="cpu")

    ours = tc(items, labels)
    theirs = classifier(items, candidate_labels=labels)
    loop = sorted_loop(model, tokenizer, items, labels)
    for mine, peer, hand in zip(ours, theirs, loop):
        expected = dict(zip(peer["labels"], peer["scores"]))
        assert all(abs(mine[label] - expected[label]) < 1e-4 for label in labels), (mine, expected)
        assert all(abs(mine[label] - hand[label]) < 1e-4 for label in labels), (mine, hand)

    timings = {
        "bpcore": best_of(args.repeat, lambda: tc(items, labels)),
        "hand-written sorted loop (32)": best_of(
            args.repeat, lambda: sorted_loop(model, tokenizer, items, labels)
        ),
        "pipeline, default batch size": best_of(
            args.repeat, lambda: classifier(items, candidate_labels=labels)
        ),
        "pipeline, batch_size=16": best_of(
            args.repeat, lambda: classifier(items, candidate_labels=labels, batch_size=16)
        ),
    }
    pairs = len(items) * len(labels)
    print(
        f"zero-shot text classification, {len(items)} texts x {len(labels)} labels = {pairs} pairs, "
        f"6-layer BERT (hidden {args.hidden}), CPU ({torch.get_num_threads()} threads); same scores checked"
    )
    for name, seconds in timings.items():
        ratio = seconds / timings["bpcore"]
        print(f"  {name:32s} {seconds:7.2f} s  {pairs / seconds:8.1f} pairs/s  bpcore is {ratio:.2f}x")


if __name__ == "__main__":
    main()
