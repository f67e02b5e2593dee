"""The 1,000 ImageNet class names, from timm's bundled metadata (nothing is downloaded)."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """ImageNet-1k class names in index order, unique (they key the answers' dicts).

    timm's descriptions hold two classes named "crane" (the bird and the machine); duplicates
    get their WordNet id appended: "crane (n02012849)".
    """
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    names = [info.index_to_description(index) for index in range(info.num_classes())]
    counts = Counter(names)
    return tuple(
        f"{name} ({info.index_to_label_name(index)})" if counts[name] > 1 else name
        for index, name in enumerate(names)
    )
