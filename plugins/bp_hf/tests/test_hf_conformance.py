"""bp-hf's models pass bpcore's conformance kit: one test per model, task and rule, on tiny models."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tiny_hf import tiny_bert_folder, tiny_gpt2_folder, tiny_nli_folder, tiny_t5_folder

from bpcore.testing import Candidate, parametrize_with_checks

TEXT_TO_TEXT = ["qa", "emotion", "summarisation", "text-generation"]
# Each tiny model is written once per session; every check loads a fresh copy from its folder.
ROOT = Path(tempfile.mkdtemp(prefix="bp-hf-conformance-"))
T5 = tiny_t5_folder(ROOT / "t5")
GPT2 = tiny_gpt2_folder(ROOT / "gpt2")
NLI = tiny_nli_folder(ROOT / "nli")
BERT = tiny_bert_folder(ROOT / "bert", id2label={0: "a", 1: "b"})


def t5_multitask():
    from bp_hf import T5QASummaryEmotion

    return T5QASummaryEmotion(T5, name="tiny-t5-multitask")


def gpt2():
    from bp_hf import HFCausalLMTGModel

    return HFCausalLMTGModel(GPT2, name="tiny-gpt2")


def nli():
    from bp_hf import HFNLIModel

    return HFNLIModel(NLI, name="tiny-nli")


def sequence_classifier():
    from bp_hf import HFSeqTCModel

    return HFSeqTCModel(BERT, name="tiny-bert-classifier")


@parametrize_with_checks(
    [
        Candidate(
            t5_multitask,
            tasks=TEXT_TO_TEXT,
            finetunable=TEXT_TO_TEXT,
            # A random tiny T5 never stops early: each call generates the full 96-200 tokens.
            fuzz_examples=(40, 50),
            # Four threads already interleave calls on one model; more only lengthens the suite.
            thread_calls=(4, 3),
            name="tiny-t5",
            plugin="hf",
        ),
        Candidate(
            gpt2,
            tasks=["text-generation"],
            finetunable=["text-generation"],
            thread_calls=(4, 8),
            name="tiny-gpt2",
            plugin="hf",
        ),
        Candidate(nli, tasks=["text-classification"], name="tiny-nli", plugin="hf"),
        Candidate(
            sequence_classifier,
            tasks=["text-classification"],
            finetunable=["text-classification"],
            # Finetuned on the user's labels: it answers over them, with no labels passed.
            inputs={"text-classification": {"labels": None}},
            needs_finetuning=["text-classification"],
            name="tiny-bert-classifier",
            plugin="hf",
        ),
    ]
)
def test_conformance(candidate, check):
    check(candidate)
