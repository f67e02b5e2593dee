"""OpenVINO backend: bpcore ``backend="openvino"`` vs bpcore torch fp32 vs sentence-transformers fp32, in one run.

1,000 mixed-length sentences (5 to 60 words), all-MiniLM-L6-v2, 1 thread (torch's and
OpenVINO's), best of 3 rounds with the paths interleaved in each round (load drifts between
rounds). OpenVINO runs bf16 only where the CPU has it (its ``BF16`` capability: AMX or
avx512-bf16), else f32: the precision it runs is printed, beside the CPU and its bf16 flags.
Each path's smallest cosine against sentence-transformers fp32 is printed beside its speed. The
export is cached under ``$BPCORE_HOME``: the first run exports (printed with its time), the next
ones load it.

    python bench/openvino_backend.py [--sentences 1000] [--threads 1] [--runs 3]

(Not ``bench/openvino.py``: run as a script, that name would shadow the ``openvino`` package.)
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
from common import best_of_rounds, load_average, machine, sentences

import bpcore


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # before the export: OpenVINO takes torch's thread count
    os.environ.setdefault("BPCORE_LOAD_PLUGINS", "st")
    texts = sentences(args.sentences)

    torch_task = bpcore.TextVectorisation("all-minilm-l6-v2", device="cpu")
    st = torch_task.model.model  # the SentenceTransformer inside bp-st's model
    start = time.perf_counter()
    openvino_model = bpcore.models.AutoModel.from_pretrained("all-minilm-l6-v2", device="cpu")
    openvino_task = bpcore.TextVectorisation(openvino_model.set_backend("openvino"))
    ready = time.perf_counter() - start
    compiled = openvino_model._openvino_encoder().compiled  # what OpenVINO chose, to print
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "f32" or "bf16"
    threads = compiled.get_property("INFERENCE_NUM_THREADS")

    paths: dict[str, Callable[[], torch.Tensor]] = {
        "sentence-transformers fp32": lambda: st.encode(texts, batch_size=32, convert_to_tensor=True),
        "bpcore torch fp32": lambda: torch_task(texts, return_tensor=True),
        f"bpcore openvino ({precision})": lambda: openvino_task(texts, return_tensor=True),
    }
    print(f"text vectorisation, {len(texts)} sentences, all-MiniLM-L6-v2, {args.threads} thread(s)")
    print(f"  machine: {machine()}; load average {load_average()} at start")
    print(
        f"  openvino: runs {precision} on {threads} thread(s); model ready in {ready:.1f} s (export or cache)"
    )
    results = best_of_rounds(paths, args.runs)
    base_seconds, base = results["sentence-transformers fp32"]
    for name, (seconds, vectors) in results.items():
        cosine = torch.nn.functional.cosine_similarity(vectors.float(), base.float()).min().item()
        print(
            f"  {name:<32} {len(texts) / seconds:7.1f} sentences/s  {base_seconds / seconds:5.2f}× "
            f"sentence-transformers fp32, min cosine {cosine:.6f}"
        )
    print(f"  load average {load_average()} at end")


if __name__ == "__main__":
    main()
