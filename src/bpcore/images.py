"""The one place images are decoded: paths, base64 strings and PIL images, to RGB PIL images."""

from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from bpcore.errors import InputError
from bpcore.flags import setting

if TYPE_CHECKING:
    from PIL import Image


# A server decodes what clients send: a path would read the server's own files.
_PATHS_ALLOWED: ContextVar[bool] = ContextVar("bpcore_image_paths_allowed", default=True)


@contextmanager
def base64_only() -> Iterator[None]:
    """Images decoded inside come from base64 strings, data URLs or PIL images only, never a file path."""
    with setting(_PATHS_ALLOWED, False):
        yield


def _looks_like_path(value: str) -> bool:
    return len(value) < 4096 and (os.sep in value or "." in value[-6:] or os.path.exists(value))


def _pixels_problem(size: tuple[int, int]) -> str | None:
    """Why an image of ``size`` is refused before decoding (None: it is fine)."""
    from PIL import Image

    width, height = size
    if width <= 0 or height <= 0:
        return f"is an empty image ({width}x{height} pixels)"
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        return (
            f"is {width}x{height} pixels, more than the {limit} that PIL.Image.MAX_IMAGE_PIXELS allows; "
            "refusing to decode it (resize it, or raise that limit if you trust the image)"
        )
    return None


def _open_file(source: Any, field: str, what: str) -> Image.Image:
    """``Image.open`` (which reads only the header), with size checks before any pixel is decoded."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # PIL warns (and above twice the limit raises) for decompression bombs; we refuse both.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
    except Image.DecompressionBombError as error:
        raise InputError(f"is too large, refusing to decode it: {error}", field=field) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        # A file's error names the file; an in-memory one would only name a BytesIO object.
        detail = f" ({error})" if isinstance(source, str) else ""
        raise InputError(f"{what}{detail}", field=field) from None
    problem = _pixels_problem(image.size)
    if problem:
        image.close()
        raise InputError(problem, field=field)
    return image


def _open(value: Any, field: str) -> Image.Image:
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if not isinstance(value, str):
        raise InputError(
            f"expected an image path, base64 string or PIL image, got {type(value).__name__}", field=field
        )
    paths = _PATHS_ALLOWED.get()
    if paths and os.path.isfile(value):
        return _open_file(value, field, f"{value!r} is not an image file")
    if value.startswith("data:"):
        header, comma, data = value.partition(",")
        if not comma or not data:
            raise InputError(
                "is a data URL without data: expected 'data:image/png;base64,<base64 data>'", field=field
            )
        if not header.endswith(";base64"):
            raise InputError("is a data URL that is not base64-encoded (no ';base64')", field=field)
    else:
        data = value
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        if not paths:
            raise InputError(
                "is not valid base64 (send images as base64 strings or data URLs)", field=field
            ) from None
        if _looks_like_path(value):
            raise InputError(f"no image file at {value!r:.300}", field=field) from None
        raise InputError("is neither an existing file nor valid base64", field=field) from None
    if not raw:
        raise InputError("is an empty base64 string", field=field)
    return _open_file(io.BytesIO(raw), field, "is base64 but not an image")


def load_image(value: Any, field: str = "image") -> Image.Image:
    """Decode one image (a path, base64 or PIL image) to an RGB PIL image; errors name ``field``.

    A plugin calls it on what a direct model call hands over; what a task hands over is
    already an RGB image, which comes back as it is.

    Example::

        from bpcore.plugins import load_image

        load_image("dog.png").size   # (width, height)
    """
    image = _open(value, field)
    problem = _pixels_problem(image.size)
    if problem:
        raise InputError(problem, field=field)
    try:
        image.load()  # a lazily opened or damaged file fails here, inside the handlers below
        return image if image.mode == "RGB" else image.convert("RGB")
    except ValueError as error:  # e.g. "Operation on closed image"
        raise InputError(f"cannot be read ({error})", field=field) from None
    except Exception as error:  # a damaged file fails while decoding, in many ways
        raise InputError(
            f"could not decode the image ({type(error).__name__}: {error})", field=field
        ) from None


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
    """Check an image is readable before finetuning starts: a file by verifying it without decoding its
    pixels, the caller's own PIL image (perhaps opened lazily with ``Image.open``) by loading it."""
    image = _open(value, field)
    problem = _pixels_problem(image.size)
    if problem:
        raise InputError(problem, field=field)
    if image is value:  # the caller's own PIL image: verify() would use up its file, so load it
        try:
            image.load()
        except Exception as error:
            raise InputError(f"cannot be read ({error})", field=field) from None
        return
    try:
        image.verify()
    except Exception as error:
        raise InputError(f"is a damaged image ({error})", field=field) from None
    finally:
        image.close()  # opened here, from a path or base64


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
