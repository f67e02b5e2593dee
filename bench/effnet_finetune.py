"""EfficientNet finetuning: bpcore vs. a plain timm + torch training loop, in one run.

Same network (a random-weights timm EfficientNet-B0, BatchNorm calibrated and residual
branches damped as in the bp-effnet tests), same images (generated red / green / blue, 64 px),
same timm preprocessing, same optimizer (bp-effnet's default: SGD momentum 0.9, warm-up,
head 0.1 / body 0.01), same epochs, batch size, training/validation split, and both validate
every epoch. Prints held-out accuracy and wall time of each, and the ratios.

    python bench/effnet_finetune.py [--per-label 100] [--epochs 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "bp_effnet" / "tests"))

BATCH_SIZE = 16


def accuracy(answers, truths) -> float:
    return sum(max(answer, key=answer.get) == truth for answer, truth in zip(answers, truths)) / len(truths)


def plain_loop(model, images, labels, train_indices, val_indices, epochs: int, seed: int) -> None:
    """What a user would write with timm and torch alone (model: an EfficientNet whose head is reset)."""
    network = model.model
    transform = model.transform(training=False)
    index = {label: i for i, label in enumerate(sorted(set(labels)))}
    dataset = [(images[i], index[labels[i]]) for i in range(len(images))]

    def collate(rows):
        return torch.stack([transform(image) for image, _ in rows]), torch.tensor(
            [target for _, target in rows]
        )

    generator = torch.Generator().manual_seed(seed)
    train = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, train_indices),
        batch_size=BATCH_SIZE,
        shuffle=True,
        collate_fn=collate,
        generator=generator,
    )
    val = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, val_indices), batch_size=BATCH_SIZE, collate_fn=collate
    )
    optimizer = model.configure_optimizers()
    # bp-effnet's finetune_defaults: a linear warm-up over the first 10 optimizer steps.
    warmup = model.finetune_defaults["warmup_steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, step / warmup))
    best, best_state = float("inf"), None
    for _ in range(epochs):
        network.train()
        for inputs, targets in train:
            loss = F.cross_entropy(network(inputs), targets)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        network.eval()
        with torch.no_grad():
            val_loss = sum(F.cross_entropy(network(inputs), targets).item() for inputs, targets in val) / len(
                val
            )
        if val_loss < best:
            best, best_state = val_loss, {k: v.detach().clone() for k, v in network.state_dict().items()}
    network.load_state_dict(best_state)
    network.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-label", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    from tiny_effnet import IMAGE_SIZE, TIMM_MODEL, effnet_weights_file, single_label_data

    import bpcore
    from bp_effnet import EfficientNet

    weights = effnet_weights_file(Path(tempfile.mkdtemp()))
    images, labels = single_label_data(args.per_label, seed=1)
    test_images, test_labels = single_label_data(20, seed=2)
    # Whole batches of 16 for training, the rest (at least a sixth) to validate on.
    train_count = (len(images) * 5 // 6) // BATCH_SIZE * BATCH_SIZE
    train_indices, val_indices = list(range(train_count)), list(range(train_count, len(images)))
    label_map = {i: label for i, label in enumerate(sorted(set(labels)))}

    def fresh():
        model = EfficientNet(TIMM_MODEL, pretrained=str(weights), image_size=IMAGE_SIZE)
        torch.manual_seed(0)
        model.pre_finetuning(label_map, len(label_map))
        return model

    ours = fresh()
    ic = bpcore.ImageClassification(ours)
    start = time.perf_counter()
    ic.finetune(
        {"images": images, "labels": labels},
        epochs=args.epochs,
        batch_size=BATCH_SIZE,
        validation_split=(train_indices, val_indices),
        early_stopping_epochs=0,
        seed=0,
    )
    bpcore_time = time.perf_counter() - start
    bpcore_accuracy = accuracy(ic(test_images), test_labels)

    theirs = fresh()
    start = time.perf_counter()
    plain_loop(theirs, images, labels, train_indices, val_indices, args.epochs, seed=0)
    plain_time = time.perf_counter() - start
    plain_accuracy = accuracy(theirs.classify(test_images), test_labels)

    print(
        f"EfficientNet-B0 finetuning, {len(train_indices)} training / {len(val_indices)} validation images at "
        f"{IMAGE_SIZE} px, {args.epochs} epochs, batch {BATCH_SIZE}, CPU ({torch.get_num_threads()} threads)"
    )
    print(f"  bpcore:     {bpcore_time:6.1f} s   accuracy {bpcore_accuracy:.3f}")
    print(f"  plain loop: {plain_time:6.1f} s   accuracy {plain_accuracy:.3f}")
    print(
        f"  time ratio bpcore / plain: {bpcore_time / plain_time:.2f}x (target <= 1.1x); "
        f"accuracy difference: {100 * (bpcore_accuracy - plain_accuracy):+.1f} points (target within 3)"
    )


if __name__ == "__main__":
    main()
