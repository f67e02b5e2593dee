"""Text metrics: SQuAD's exact match and token F1, and ROUGE-L from the rouge-score package.

SQuAD's normalisation and token F1 are a few lines of its official evaluation script (v2.0),
which no installed library ships; ROUGE is rouge-score's.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, punctuation and articles (a, an, the) removed, whitespace collapsed: SQuAD's normalisation."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(reference: str, answer: str) -> float:
    return float(normalize_answer(reference) == normalize_answer(answer))


def token_f1(reference: str, answer: str) -> float:
    """F1 of the normalised tokens in common (counted with multiplicity); two empty texts agree."""
    truth, predicted = normalize_answer(reference).split(), normalize_answer(answer).split()
    if not truth or not predicted:
        return float(truth == predicted)
    common = sum((collections.Counter(truth) & collections.Counter(predicted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def text_scores(references: Sequence[str], answers: Sequence[Any]) -> tuple[dict[str, Any], list[str]]:
    """Mean exact match, token F1 and ROUGE-L F-measure of the answers; and the answers as texts."""
    from rouge_score import rouge_scorer

    texts = [as_text(answer) for answer in answers]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    count = len(references)
    values = {
        "exact_match": sum(map(exact_match, references, texts)) / count,
        "f1": sum(map(token_f1, references, texts)) / count,
        "rougeL": sum(scorer.score(ref, text)["rougeL"].fmeasure for ref, text in zip(references, texts))
        / count,
    }
    return values, texts


def as_text(answer: Any) -> str:
    """One answer as text: text generation with ``num_generations`` answers a list; the first counts."""
    if isinstance(answer, (list, tuple)):
        answer = answer[0] if answer else ""
    return "" if answer is None else str(answer)
