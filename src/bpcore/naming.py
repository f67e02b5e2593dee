"""Model names: 3–100 characters of lowercase a–z, digits, ``-`` and ``_``."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"^[a-z0-9_-]{3,100}$")


def check_model_name(name: object, field: str = "name") -> str:
    from bpcore.errors import InputError

    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InputError(
            f"{name!r} is not a valid model name: use 3-100 characters of lowercase a-z, digits, '-' and '_'",
            field=field,
        )
    return name
