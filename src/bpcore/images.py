"""The one place images are decoded: paths, base64 strings and PIL images, to RGB PIL images."""

from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bpcore.errors import InputError

if TYPE_CHECKING:
    from PIL import Image


def _looks_like_path(value: str) -> bool:
    return len(value) < 4096 and (os.sep in value or "." in value[-6:] or os.path.exists(value))


def _open(value: Any, field: str) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, Image.Image):
        return value
    if not isinstance(value, str):
        raise InputError(
            f"expected an image path, base64 string or PIL image, got {type(value).__name__}", field=field
        )
    if os.path.isfile(value):
        try:
            return Image.open(value)
        except (UnidentifiedImageError, OSError) as error:
            raise InputError(f"{value!r} is not an image file ({error})", field=field) from None
    data = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        if _looks_like_path(value):
            raise InputError(f"no image file at {value!r}", field=field) from None
        raise InputError("is neither an existing file nor valid base64", field=field) from None
    try:
        return Image.open(io.BytesIO(raw))
    except (UnidentifiedImageError, OSError):
        raise InputError("is base64 but not an image", field=field) from None


def load_image(value: Any, field: str = "image") -> Image.Image:
    """Decode one image to an RGB PIL image; errors name ``field``."""
    image = _open(value, field)
    try:
        return image.convert("RGB")
    except OSError as error:
        raise InputError(f"could not decode the image ({error})", field=field) from None


def load_images(values: Sequence[Any], field: str = "image") -> list[Image.Image]:
    return [load_image(value, f"{field}[{index}]") for index, value in enumerate(values)]


def decode_view(view: Mapping[str, Any]) -> Mapping[str, Any]:
    """A finetuning view with its ``image`` decoded to RGB, as inference hands images to models.

    Images were checked (with their field names) before training started; decoding waits
    until an example is read, so a large data set never sits decoded in memory.
    """
    if "image" not in view:
        return view
    return {**view, "image": load_image(view["image"], "params image")}


def check_image(value: Any, field: str = "image") -> None:
    """Check an image is readable without decoding all its pixels (used before finetuning starts)."""
    image = _open(value, field)
    if getattr(image, "fp", None) is None:  # an in-memory PIL image: nothing to check
        return
    try:
        image.verify()
    except Exception as error:
        raise InputError(f"is a damaged image ({error})", field=field) from None


def path_to_img(image: str | Sequence[str]) -> Any:
    """PIL images from paths (one or a list)."""
    if isinstance(image, str):
        return load_image(image)
    return load_images(image)


def img_to_base64(image: Image.Image | Sequence[Image.Image], format: str = "PNG") -> str | list[str]:
    """Base64 strings of PIL images (one or a list)."""
    from PIL import Image

    def encode(single: Image.Image) -> str:
        buffer = io.BytesIO()
        single.save(buffer, format=format)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    if isinstance(image, Image.Image):
        return encode(image)
    return [encode(single) for single in image]


def base64_to_img(image: str | Sequence[str]) -> Any:
    """PIL images from base64 strings (one or a list)."""
    if isinstance(image, str):
        return load_image(image)
    return load_images(image)
