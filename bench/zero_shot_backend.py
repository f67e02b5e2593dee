"""Zero-shot backends: bp-hf ``backend="openvino"`` vs bp-hf torch fp32, in one run.

200 mixed-length texts (5 to 60 words) × 10 labels (2,000 premise/hypothesis pairs), zero-shot
text classification with ``HFNLIModel``, 1 thread (torch's and OpenVINO's), best of 3 rounds with
the paths interleaved in each round (load drifts between rounds; about 20 minutes on 2 cores). The model is a BERT-base-sized
NLI classifier (12 layers, hidden 768) with random weights, built here with all-MiniLM-L6-v2's
uncased WordPiece tokenizer: no NLI model can be downloaded on this machine, and what is measured
is the two paths on the same weights (``--model FOLDER`` runs a local NLI model instead, such as a
saved deberta-base-mnli). Printed: the CPU and its bf16 flags, the precision OpenVINO runs (bf16
only where the CPU has it), each path's pairs/s, the ratio, the share of texts whose top label
is the same on both paths (≥ 99.5% wanted), the largest probability difference, and the median
gap between a text's two top labels (random weights leave small gaps: how near ties it is tested). The export is
cached under ``$BPCORE_HOME``: the first run exports (its time is printed), the next ones load it.

    python bench/zero_shot_backend.py [--texts 200] [--labels 10] [--threads 1] [--runs 3] [--model FOLDER]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from precision import sentences
from serve_throughput import load_average, machine

import bpcore

LABELS = "sports politics weather music film food science travel health business".split()
Answers = list[dict[str, float]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", help="a local NLI model folder (default: a random BERT-base NLI model)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # before the export: OpenVINO takes torch's thread count
    os.environ.setdefault("BPCORE_LOAD_PLUGINS", "hf")
    with tempfile.TemporaryDirectory() as scratch:  # the random model is 0.4 GB: not left behind
        compare(Path(args.model) if args.model else random_bert_base_nli(Path(scratch)), args)


def compare(folder: Path, args: argparse.Namespace) -> None:
    """Time both paths on the NLI model in ``folder`` and print the results."""
    from bp_hf import HFNLIModel

    texts, labels = sentences(args.texts), LABELS[: args.labels]

    torch_task = bpcore.TextClassification(HFNLIModel(folder, device="cpu"))
    start = time.perf_counter()
    openvino_model = HFNLIModel(folder, device="cpu", backend="openvino")
    ready = time.perf_counter() - start
    openvino_task = bpcore.TextClassification(openvino_model)
    compiled = openvino_model._openvino_classifier().compiled  # what OpenVINO chose, to print
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "f32" or "bf16"

    paths: dict[str, Callable[[list[str]], Answers]] = {
        "bp-hf torch fp32": lambda batch: torch_task(batch, labels),
        f"bp-hf openvino ({precision})": lambda batch: openvino_task(batch, labels),
    }
    pairs = len(texts) * len(labels)
    print(
        f"zero-shot text classification, {len(texts)} texts x {len(labels)} labels = {pairs} pairs, "
        f"{describe(openvino_model)}, {args.threads} thread(s)"
    )
    print(f"  machine: {machine()}; load average {load_average()} at start")
    print(f"  openvino: runs {precision}; model ready in {ready:.1f} s (export or cache)")
    results = best_of_rounds(paths, texts, args.runs)
    base_seconds, base = results["bp-hf torch fp32"]
    for name, (seconds, answers) in results.items():
        print(
            f"  {name:<24} {pairs / seconds:7.1f} pairs/s  {base_seconds / seconds:5.2f}× torch fp32, "
            f"{agreement(answers, base)}"
        )
    print(f"  load average {load_average()} at end")


def random_bert_base_nli(folder: Path) -> Path:
    """A BERT-base-sized NLI classifier with random weights (seeded: the same weights, so the same cached export, each run)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from bp_st.bundled import all_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(all_minilm_path()))  # BERT's uncased WordPiece vocabulary
    id2label = {0: "entailment", 1: "neutral", 2: "contradiction"}
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        id2label=id2label,
        label2id={label: index for index, label in id2label.items()},
    )  # BERT-base: 12 layers, hidden 768, 12 heads, 512 positions
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def describe(model: Any) -> str:
    config = model.model.config
    parameters = sum(parameter.numel() for parameter in model.model.parameters())
    return f"{config.model_type} {config.num_hidden_layers} layers, hidden {config.hidden_size}, {parameters / 1e6:.0f}M parameters"


def agreement(answers: Answers, base: Answers) -> str:
    """How many texts have the same top label on both paths, the largest probability difference,
    and the median gap between a text's two top labels (how near the ties the agreement is tested)."""
    same = sum(next(iter(mine)) == next(iter(theirs)) for mine, theirs in zip(answers, base))
    largest = max(abs(mine[label] - theirs[label]) for mine, theirs in zip(answers, base) for label in mine)
    gaps = sorted(first - second for first, second, *_ in (list(answer.values()) for answer in base))
    return (
        f"same top label on {same / len(base):.1%} of texts, largest probability difference {largest:.1e} "
        f"(median top-two gap {gaps[len(gaps) // 2]:.1e})"
    )


def best_of_rounds(
    paths: dict[str, Callable[[list[str]], Answers]], texts: list[str], runs: int
) -> dict[str, tuple[float, Answers]]:
    """Each path's fastest time over ``runs`` rounds (every path once per round) and its last answers."""
    for work in paths.values():
        work(texts[:16])  # warm-up: allocators, OpenVINO's first shapes
    times: dict[str, list[float]] = {name: [] for name in paths}
    answers: dict[str, Answers] = {}
    for _ in range(runs):
        for name, work in paths.items():
            start = time.perf_counter()
            answers[name] = work(texts)
            times[name].append(time.perf_counter() - start)
    return {name: (min(times[name]), answers[name]) for name in paths}


if __name__ == "__main__":
    main()
