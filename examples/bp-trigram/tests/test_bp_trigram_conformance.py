"""bp-trigram passes bpcore's conformance kit: one test per model, task and rule."""

from bpcore.testing import Candidate, parametrize_with_checks


def text_model():
    from bp_trigram import TrigramTextModel

    return TrigramTextModel()


def image_model():
    from bp_trigram import TinyConvModel

    return TinyConvModel()


IMAGE = Candidate(
    image_model,
    tasks=["image-vectorisation", "image-classification"],
    finetunable=["image-vectorisation", "image-classification"],
    # No zero-shot: it answers over the labels it was finetuned on.
    inputs={"image-classification": {"labels": None}},
    needs_finetuning=["image-classification"],
    name="tiny-conv",
    plugin="trigram",
)


@parametrize_with_checks(
    [
        Candidate(
            text_model,
            tasks=["text-vectorisation", "text-classification"],
            finetunable=["text-vectorisation", "text-classification"],
            name="trigram-text",
            plugin="trigram",
        ),
        IMAGE,
        "trigram-text",  # the registered model, built by its plugin's factory
    ]
)
def test_conformance(candidate, check):
    check(candidate)
