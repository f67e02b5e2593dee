"""Text generation: bpcore vs. a plain ``model.generate`` loop (seq2seq) and the text-generation pipeline
(causal), in one run.

Locally built models with random weights (a 4-layer T5 and a 4-layer GPT-2, tokenizers trained
offline), the same prompts, batch size 16, greedy decoding of exactly ``--new-tokens`` tokens
(``min_length = max_length``, so every peer does the same work). Checks the texts agree, then
prints prompts/s and the ratios.

    python bench/hf_generation.py [--prompts 96] [--new-tokens 24] [--width 256] [--repeat 2]
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

BATCH_SIZE = 16


def prompts(count: int, seed: int = 0) -> list[str]:
    from tiny_hf import WORDS

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40))) for _ in range(count)]


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def build_models(root: Path, width: int) -> tuple[Path, Path]:
    from tiny_hf import train_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    t5_tokenizer = train_tokenizer(root / "t5", kind="t5")
    T5ForConditionalGeneration(
        T5Config(
            vocab_size=len(t5_tokenizer),
            d_model=width,
            d_kv=64,
            d_ff=width * 4,
            num_layers=4,
            num_heads=width // 64,
            pad_token_id=t5_tokenizer.pad_token_id,
            eos_token_id=t5_tokenizer.eos_token_id,
            decoder_start_token_id=t5_tokenizer.pad_token_id,
        )
    ).save_pretrained(str(root / "t5"))
    gpt2_tokenizer = train_tokenizer(root / "gpt2", kind="gpt2")
    GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(gpt2_tokenizer),
            n_embd=width,
            n_layer=4,
            n_head=width // 64,
            n_positions=256,
            bos_token_id=gpt2_tokenizer.eos_token_id,
            eos_token_id=gpt2_tokenizer.eos_token_id,
            pad_token_id=gpt2_tokenizer.pad_token_id,
        )
    ).save_pretrained(str(root / "gpt2"))
    return root / "t5", root / "gpt2"


def generate_loop(model, tokenizer, texts, new_tokens):
    """The plain seq2seq peer: batches of 16 in the given order, padded, ``model.generate``."""
    answers = []
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH_SIZE):
            batch = tokenizer(texts[start : start + BATCH_SIZE], return_tensors="pt", padding=True)
            output = model.generate(
                **batch,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            answers += [text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)]
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

    import bpcore
    from bp_hf import HFCausalLMTGModel, HFSeq2SeqTGModel

    t5_folder, gpt2_folder = build_models(Path(tempfile.mkdtemp()), args.width)
    texts, new = prompts(args.prompts), args.new_tokens
    options = {"max_length": new, "min_length": new}
    print(
        f"text generation, {len(texts)} prompts, {new} new tokens each, greedy, batch size {BATCH_SIZE}, "
        f"4-layer models of width {args.width}, CPU ({torch.get_num_threads()} threads)"
    )

    seq2seq = bpcore.TextGeneration(HFSeq2SeqTGModel(t5_folder, device="cpu"))
    t5 = AutoModelForSeq2SeqLM.from_pretrained(str(t5_folder)).eval()
    t5_tokenizer = AutoTokenizer.from_pretrained(str(t5_folder))
    assert seq2seq(texts, **options) == generate_loop(t5, t5_tokenizer, texts, new)
    ours = best_of(args.repeat, lambda: seq2seq(texts, **options))
    peer = best_of(args.repeat, lambda: generate_loop(t5, t5_tokenizer, texts, new))
    print(
        f"  seq2seq (T5)  bpcore {ours:6.2f} s  model.generate loop {peer:6.2f} s  bpcore is {peer / ours:.2f}x"
    )

    causal = bpcore.TextGeneration(HFCausalLMTGModel(gpt2_folder, device="cpu"))
    gpt2 = AutoModelForCausalLM.from_pretrained(str(gpt2_folder)).eval()
    gpt2_tokenizer = AutoTokenizer.from_pretrained(str(gpt2_folder))
    gpt2_tokenizer.padding_side = "left"
    generator = pipeline("text-generation", model=gpt2, tokenizer=gpt2_tokenizer, device="cpu")
    pipeline_options = {
        "batch_size": BATCH_SIZE,
        "max_new_tokens": new,
        "min_new_tokens": new,
        "do_sample": False,
        "return_full_text": False,
    }
    theirs = [output[0]["generated_text"] for output in generator(texts, **pipeline_options)]
    mine = causal(texts, **options)
    agree = sum(a.strip() == b.strip() for a, b in zip(mine, theirs))
    ours = best_of(args.repeat, lambda: causal(texts, **options))
    peer = best_of(args.repeat, lambda: generator(texts, **pipeline_options))
    print(
        f"  causal (GPT-2) bpcore {ours:6.2f} s  text-generation pipeline {peer:6.2f} s  bpcore is {peer / ours:.2f}x"
        f"  ({agree}/{len(texts)} texts identical)"
    )


if __name__ == "__main__":
    main()
