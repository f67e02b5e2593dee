"""Finetuning data laid out as one folder per label: ``photos/beagle/1.jpg``, ``photos/dachshund/7.png``.

``ImageClassification.finetune({"images": "photos"})`` reads it with :func:`images_and_labels`.
"""

from __future__ import annotations

import os
from pathlib import Path

from bpcore.errors import InputError

#: File endings read as images (what Pillow opens; other files, e.g. README.txt, are skipped).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)


def images_and_labels(
    folder: str | os.PathLike[str], field: str = "params.images"
) -> tuple[list[str], list[str]]:
    """``(image paths, labels)`` from a folder holding one sub-folder of images per label.

    The sub-folder names are the labels; images in nested folders below a label folder count
    for that label. Hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``) and files
    that are not images by their ending are skipped. Order is stable: labels, then paths, sorted.
    Errors (:class:`bpcore.InputError`) name ``field``: no such folder, images lying directly in
    the folder (they have no label), or no labelled images at all.

    Example::

        images, labels = images_and_labels("photos")
        # (["photos/beagle/1.jpg", "photos/dachshund/7.png"], ["beagle", "dachshund"])
        bpcore.ImageClassification(model).finetune({"images": "photos"})     # the same, in one step
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder", field=field)
    loose = sorted(
        entry.name for entry in root.iterdir() if entry.is_file() and _is_image(entry) and not _hidden(entry)
    )
    if loose:
        raise InputError(
            f"{len(loose)} image(s) lie directly in {str(folder)!r} (e.g. {loose[0]!r}) and so have no label: "
            "put each image in a sub-folder named after its label",
            field=field,
        )
    images: list[str] = []
    labels: list[str] = []
    for label_folder in sorted(entry for entry in root.iterdir() if entry.is_dir() and not _hidden(entry)):
        for path in sorted(_images_below(label_folder)):
            images.append(str(path))
            labels.append(label_folder.name)
    if not images:
        raise InputError(
            f"{str(folder)!r} holds no images in label sub-folders (e.g. {str(folder)!r}/cat/1.jpg)",
            field=field,
        )
    return images, labels


def _images_below(folder: Path) -> list[Path]:
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        found.extend(
            Path(directory) / name
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        )
    return found


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")
