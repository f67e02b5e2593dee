"""The hooks a bpcore plugin can implement (reference: docs/plugins/hooks.md).

Hook implementations must stay cheap: they run whenever models are listed, so they declare
metadata and import no torch and no model library. Mark each with ``@bpcore.hookimpl``; a
misspelled or unmarked hook is reported by ``bpcore plugins``.
"""

from __future__ import annotations

import pluggy

from bpcore.plugins.specs import RegisterClass, RegisterModel

hookspec = pluggy.HookspecMarker("bpcore")
#: Marks a plugin's hook implementations (also ``bpcore.hookimpl``).
hookimpl = pluggy.HookimplMarker("bpcore")


@hookspec
def register_models(register: RegisterModel) -> None:
    """Declare models by calling ``register(name=..., factory="module:attr", tasks=[...], ...)``."""


@hookspec
def register_model_classes(register: RegisterClass) -> None:
    """Export model classes as ``bpcore.models.<Name>`` by calling ``register("Name", "module:attr")``."""
