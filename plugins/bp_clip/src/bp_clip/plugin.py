"""The bpcore hooks of bp-clip: plain metadata only, so listing models imports neither torch nor open_clip."""

from __future__ import annotations

from collections.abc import Callable

from bpcore.plugins import RegisterModel, hookimpl

IMAGE_CLASSIFICATION = "image-classification"
IMAGE_VECTORISATION = "image-vectorisation"
TEXT_VECTORISATION = "text-vectorisation"
IMAGE_TEXT_VECTORISATION = "image-text-vectorisation"
TASKS = [IMAGE_CLASSIFICATION, IMAGE_VECTORISATION, TEXT_VECTORISATION, IMAGE_TEXT_VECTORISATION]
FACTORY = "bp_clip.model:CLIP"
CREDITS = [
    {"name": "OpenAI CLIP", "url": "https://github.com/openai/CLIP"},
    {"name": "OpenCLIP", "url": "https://github.com/mlfoundations/open_clip"},
]

#: name → (open_clip architecture, the spec's name for it, parameters, vector size, image size)
ARCHITECTURES = {
    "clip": ("ViT-B-32", "ViT-B/32", 151_277_313, 512, 224),
    "clip-rn50": ("RN50", "RN50", 102_007_137, 1024, 224),
    "clip-rn101": ("RN101", "RN101", 119_688_033, 512, 224),
    "clip-rn50x4": ("RN50x4", "RN50x4", 178_300_601, 640, 288),
}


@hookimpl
def register_models(register: RegisterModel) -> None:
    for name, (architecture, spec_name, parameters, vector_size, image_size) in ARCHITECTURES.items():
        default = name == "clip"
        register(
            name=name,
            factory=FACTORY,
            tasks=TASKS,
            description=(
                f"OpenAI's CLIP {spec_name} (via OpenCLIP): zero-shot image classification and image, text "
                "and image-text vectors."
            ),
            aliases={f"clip-{architecture.lower()}": []} if default else {},
            finetunable=TASKS,
            default_for=[IMAGE_CLASSIFICATION, IMAGE_VECTORISATION, IMAGE_TEXT_VECTORISATION]
            if default
            else [],
            # The OpenAI weights are downloaded by open_clip on first use; offline, pass a local checkpoint.
            init_kwargs={"model_path": architecture, "pretrained": "openai"},
            details={
                "num_parameters": parameters,
                "max_text_length": 77,
                "vector_size": vector_size,
                "image_size": image_size,
                "architecture": architecture,
                "languages": ["eng"],
                "credits": CREDITS,
            },
        )


@hookimpl
def register_module_aliases(register: Callable[[str, str], None]) -> None:
    """Spec 6.1: ``from bpcore.models.clip import CLIP`` (also ``clip.module``, where the spec defines it, and ``clip.model``)."""
    for path in ("clip", "clip.module", "clip.model"):
        register(path, "bp_clip.model")


@hookimpl
def register_folder_formats(register: Callable[..., None]) -> None:
    """A plain OpenCLIP folder is a bp-clip model (see :mod:`bp_clip.folders`)."""
    from bp_clip.folders import DESCRIPTION

    register(name="open-clip", recognise="bp_clip.folders:recognise", description=DESCRIPTION)
