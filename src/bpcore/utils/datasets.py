"""The spec's finetuning datasets (chapter 8.2): see :mod:`bpcore.tasks.datasets`, where tasks recognise them.

Example::

    from torch.utils.data import DataLoader
    from bpcore.utils.datasets import TextGroupDataset

    data = TextGroupDataset(texts, groups, model.process_batch)
    bpcore.TextVectorisation(model).finetune(None, train_dataloader=DataLoader(data, batch_size=8))
"""

from bpcore.tasks.datasets import (
    ImageGroupDataset,
    ImagePairDataset,
    ImageTextGroupDataset,
    ImageTextPairDataset,
    MultiLabelImageClassificationDataset,
    SingleLabelImageClassificationDataset,
    SingleLabelTextClassificationDataset,
    TextGroupDataset,
    TextPairDataset,
    TextToTextDataset,
)

__all__ = [
    "ImageGroupDataset",
    "ImagePairDataset",
    "ImageTextGroupDataset",
    "ImageTextPairDataset",
    "MultiLabelImageClassificationDataset",
    "SingleLabelImageClassificationDataset",
    "SingleLabelTextClassificationDataset",
    "TextGroupDataset",
    "TextPairDataset",
    "TextToTextDataset",
]
