"""The bpcore hooks of bp-trigram: plain metadata, so listing models imports no torch."""

from bpcore.plugins import hookimpl


@hookimpl
def register_models(register):
    register(
        name="trigram-text",
        factory="bp_trigram.text:TrigramTextModel",
        tasks=["text-vectorisation", "text-classification"],
        finetunable=["text-vectorisation", "text-classification"],
        description="Hashed character trigrams, averaged: a tiny text vectoriser and classifier.",
        init_kwargs={"dim": 64},
        details={"vector_size": 64, "languages": ["eng"]},
    )
    register(
        name="tiny-conv",
        factory="bp_trigram.image:TinyConvModel",
        tasks=["image-vectorisation", "image-classification"],
        finetunable=["image-vectorisation", "image-classification"],
        description="A two-layer convolutional net on 32x32 images.",
        details={"vector_size": 32, "image_size": 32},
    )
