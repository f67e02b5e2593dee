"""The nine tasks. Each validates its input and asks the registry for a model."""

from bpcore.tasks.base import Task
from bpcore.tasks.emotion import Emotion
from bpcore.tasks.image_classification import ImageClassification
from bpcore.tasks.image_text_vectorisation import ImageTextVectorisation
from bpcore.tasks.image_vectorisation import ImageVectorisation
from bpcore.tasks.qa import QA
from bpcore.tasks.summarisation import Summarisation
from bpcore.tasks.text_classification import TextClassification
from bpcore.tasks.text_generation import TextGeneration
from bpcore.tasks.text_vectorisation import TextVectorisation

TASK_CLASSES: dict[str, type[Task]] = {
    cls.task: cls
    for cls in (
        QA,
        TextClassification,
        Emotion,
        Summarisation,
        TextGeneration,
        TextVectorisation,
        ImageClassification,
        ImageVectorisation,
        ImageTextVectorisation,
    )
}

__all__ = [
    "QA",
    "TASK_CLASSES",
    "Emotion",
    "ImageClassification",
    "ImageTextVectorisation",
    "ImageVectorisation",
    "Summarisation",
    "Task",
    "TextClassification",
    "TextGeneration",
    "TextVectorisation",
]
