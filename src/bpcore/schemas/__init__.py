"""Task input and finetuning schemas (attrs classes), structured and checked by cattrs."""

from bpcore.schemas.converter import Group, ImageRef, structure
from bpcore.schemas.inputs import (
    ImageClassificationInput,
    ImageInput,
    ImageTextInput,
    QAInput,
    TextClassificationInput,
    TextGenerationInput,
    TextInput,
)
from bpcore.schemas.params import (
    ImageClassificationParams,
    ImageGroupParams,
    ImagePairParams,
    ImageTextGroupParams,
    ImageTextPairParams,
    MultiLabelImageClassificationParams,
    MultiLabelTextClassificationParams,
    QAParams,
    TextClassificationParams,
    TextGroupParams,
    TextPairParams,
    TextToTextParams,
)

__all__ = [
    "Group",
    "ImageClassificationInput",
    "ImageClassificationParams",
    "ImageGroupParams",
    "ImageInput",
    "ImagePairParams",
    "ImageRef",
    "ImageTextGroupParams",
    "ImageTextInput",
    "ImageTextPairParams",
    "MultiLabelImageClassificationParams",
    "MultiLabelTextClassificationParams",
    "QAInput",
    "QAParams",
    "TextClassificationInput",
    "TextClassificationParams",
    "TextGenerationInput",
    "TextGroupParams",
    "TextInput",
    "TextPairParams",
    "TextToTextParams",
    "structure",
]
