"""The task strings of the spec, and which distribution provides models for each (for hints only)."""

from __future__ import annotations

QA = "qa"
TEXT_CLASSIFICATION = "text-classification"
EMOTION = "emotion"
SUMMARISATION = "summarisation"
TEXT_GENERATION = "text-generation"
TEXT_VECTORISATION = "text-vectorisation"
IMAGE_CLASSIFICATION = "image-classification"
IMAGE_VECTORISATION = "image-vectorisation"
IMAGE_TEXT_VECTORISATION = "image-text-vectorisation"

TASKS: tuple[str, ...] = (
    QA,
    TEXT_CLASSIFICATION,
    EMOTION,
    SUMMARISATION,
    TEXT_GENERATION,
    TEXT_VECTORISATION,
    IMAGE_CLASSIFICATION,
    IMAGE_VECTORISATION,
    IMAGE_TEXT_VECTORISATION,
)

# Only used to tell a user what to install when a task has no model at all.
INSTALL_HINTS: dict[str, tuple[str, ...]] = {
    QA: ("bp-hf",),
    TEXT_CLASSIFICATION: ("bp-hf",),
    EMOTION: ("bp-hf",),
    SUMMARISATION: ("bp-hf",),
    TEXT_GENERATION: ("bp-hf",),
    TEXT_VECTORISATION: ("bp-st", "bp-clip"),
    IMAGE_CLASSIFICATION: ("bp-clip", "bp-effnet"),
    IMAGE_VECTORISATION: ("bp-clip",),
    IMAGE_TEXT_VECTORISATION: ("bp-clip",),
}
