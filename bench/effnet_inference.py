"""EfficientNet batched inference: bpcore vs. a plain batched timm forward, in one run.

Same network (a random-weights timm EfficientNet-B0), same images (generated, as PIL images),
same timm preprocessing and batch size (32). The plain side preprocesses, stacks, runs the
network and a softmax; bpcore also checks and decodes the input and returns a dict of the
1,000 ImageNet probabilities per image (or the top 5). Prints images/s of each and the ratios.

    python bench/effnet_inference.py [--images 256] [--image-size 64] [--repeat 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "bp_effnet" / "tests"))


def best_of_interleaved(repeat: int, *runs) -> list[float]:
    """The best time of each run, alternating them so that load from other processes hits both alike."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for run, run_times in zip(runs, times):
            start = time.perf_counter()
            run()
            run_times.append(time.perf_counter() - start)
    return [min(run_times) for run_times in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from tiny_effnet import TIMM_MODEL, effnet_weights_file, single_label_data

    import bpcore
    from bp_effnet import EfficientNet

    weights = effnet_weights_file(Path(tempfile.mkdtemp()))
    model = EfficientNet(TIMM_MODEL, pretrained=str(weights), image_size=args.image_size)
    ic = bpcore.ImageClassification(model)
    images, _ = single_label_data(args.images // 3 + 1, seed=3)
    images = images[: args.images]
    network, transform, batch_size = model.model, model.transform(), model.inference_batch_size

    def plain() -> torch.Tensor:
        rows = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = torch.stack([transform(image) for image in images[start : start + batch_size]])
                rows.append(network(batch).softmax(dim=-1))
        return torch.cat(rows)

    ours, theirs = ic(images), plain()
    first = [max(answer, key=answer.get) for answer in ours]
    names = model.class_names
    assert first == [names[i] for i in theirs.argmax(dim=-1).tolist()], (
        "bpcore and the plain forward disagree"
    )

    bpcore_time, top5_time, plain_time = best_of_interleaved(
        args.repeat, lambda: ic(images), lambda: ic(images, top_k=5), plain
    )
    print(
        f"EfficientNet-B0 inference, {len(images)} images at {args.image_size} px, batch {batch_size}, "
        f"CPU ({torch.get_num_threads()} threads), best of {args.repeat}"
    )
    print(f"  bpcore, all 1,000 probabilities: {len(images) / bpcore_time:7.1f} images/s")
    print(f"  bpcore, top_k=5:                 {len(images) / top5_time:7.1f} images/s")
    print(f"  plain forward + softmax:         {len(images) / plain_time:7.1f} images/s")
    print(
        f"  throughput ratio bpcore / plain: {plain_time / bpcore_time:.2f}x with all 1,000 labels, "
        f"{plain_time / top5_time:.2f}x with top_k=5 (target >= 0.95x)"
    )


if __name__ == "__main__":
    main()
