"""AutoModel: load any registered model by name, and list what is available."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bpcore.errors import InputError, ModelNotFoundError
from bpcore.plugins.registry import Registry, get_registry
from bpcore.plugins.specs import ModelSpec
from bpcore.protocol import ready_for_inference


def resolve_model(
    name: str | None,
    task: str | None = None,
    device: str | None = None,
    aliases: Mapping[str, str] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Any, ModelSpec | None]:
    """The model a name stands for, and its spec when it comes from the registry.

    ``None`` is the task's default; registered names and aliases come first, then models saved
    by name under ``$BPCORE_HOME`` or at a path, then a plain model folder or file at a path
    that a plugin recognises (:mod:`bpcore.model_folders`; ``task`` decides between plugins).
    ``model_kwargs`` go to a registered model's factory over its registered ones.
    """
    model_kwargs = dict(model_kwargs or {})
    registry = get_registry()
    if name is None:
        if task is None:
            raise ModelNotFoundError("name a model, or a task to take its default")
        spec = registry.default_for(task)
    else:
        try:
            spec = registry.resolve(name, task=task, aliases=aliases)
        except ModelNotFoundError:
            from bpcore.saving import find_model_path, load

            path = find_model_path(name)
            if path is None:
                raise
            if model_kwargs:
                raise InputError(
                    f"{name!r} is a saved model: it is built from its folder, so {sorted(model_kwargs)} "
                    "cannot be given (a model's run-time settings have their own methods, e.g. set_backend)",
                    field=sorted(model_kwargs)[0],
                ) from None
            return load(path, device=device, task=task), None
    return ready_for_inference(spec.load(device=device, **model_kwargs)), spec


def _display(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        print(f"Name         {row['name']}")
        print(f"Description  {row['description']}")
        print(f"Tasks        {', '.join(row['tasks'])}")
        if row["finetunable"]:
            print(f"Finetunable  {', '.join(row['finetunable'])}")
        if row["aliases"]:
            print(f"Aliases      {', '.join(row['aliases'])}")
        print("-" * 60)


def list_model_rows(
    task: str | None = None,
    limit: int | None = None,
    aliases: Mapping[str, str] | None = None,
    pattern: str | None = None,
    plugin: str | None = None,
) -> list[dict[str, Any]]:
    registry = get_registry()
    defaults = chosen_defaults(registry)
    rows = []
    for spec in registry.list_models(task=task, pattern=pattern, plugin=plugin)[:limit]:
        row = spec.as_dict()
        # What a task really picks (BPCORE_DEFAULTS and clashes decided), not what the plugin asked for.
        picked = [name for name, default in defaults.items() if default is spec]
        row["default_for"] = [t for t in spec.default_for if t in picked] + [
            t for t in picked if t not in spec.default_for
        ]
        # The name that loads it: ``plugin/name`` when another plugin's model has the plain name.
        row["name"] = registry.display_name(spec)
        row["aliases"] = sorted(
            set(registry.aliases_of(spec, task)) | {a for a, n in (aliases or {}).items() if n == row["name"]}
        )
        rows.append(row)
    return rows


def chosen_defaults(registry: Registry) -> dict[str, ModelSpec]:
    """The model each task takes by default, for the tasks that have one."""
    from bpcore.errors import BpcoreError
    from bpcore.tasknames import TASKS

    chosen = {}
    for task in TASKS:
        try:
            chosen[task] = registry.default_for(task)
        except BpcoreError:  # no model, or an ambiguous default: nothing to mark
            continue
    return chosen


class AutoModel:
    """Load a model by name, alias or saved path; list the registered models.

    Example::

        from bpcore.models import AutoModel

        AutoModel.list_models(task="text-vectorisation", display=True)
        model = AutoModel.from_pretrained("all-minilm-l6-v2")
    """

    @staticmethod
    def from_pretrained(
        model_name: str,
        aliases: Mapping[str, str] | None = None,
        device: str | None = None,
        task: str | None = None,
        **model_kwargs: Any,
    ) -> Any:
        """Build a registered model by name or alias, or load one saved with :func:`bpcore.save`.

        ``model_name`` is a registered name (or ``plugin/name``), an alias, a saved model's name or
        a path; ``aliases`` maps extra names to registered ones (``{"mine": "t5-small"}``);
        ``device`` is where the weights go (None: CUDA when available, else the CPU); ``task``
        picks between models that share an alias, or between plugins recognising a plain folder.
        Other keywords go to a registered model's class over its registered arguments (a saved
        model is built from its folder and takes none).

        Example::

            from bpcore.models import AutoModel

            model = AutoModel.from_pretrained("t5-small", device="cpu")
            fast = AutoModel.from_pretrained("all-minilm-l6-v2", backend="openvino")  # bp-st[openvino]
        """
        return resolve_model(
            model_name, task=task, device=device, aliases=aliases, model_kwargs=model_kwargs
        )[0]

    @staticmethod
    def list_models(
        task: str | None = None,
        return_dict: bool = False,
        display: bool = False,
        limit: int | None = None,
        aliases: Mapping[str, str] | None = None,
        pattern: str | None = None,
        plugin: str | None = None,
    ) -> list[dict[str, Any]] | dict[str, dict[str, Any]] | None:
        """Registered models: a list of dicts, a dict keyed by name, or printed with ``display=True``.

        ``task``, ``pattern`` (fnmatch, e.g. ``"gpt2*"``) and ``plugin`` (e.g. ``"hf"``) filter them;
        ``return_dict`` keys them by name; ``limit`` keeps the first so many; ``aliases`` adds
        extra names for registered models (listed under those names too).

        Example::

            AutoModel.list_models(task="summarisation", display=True)
        """
        rows = list_model_rows(task=task, limit=limit, aliases=aliases, pattern=pattern, plugin=plugin)
        if display:
            _display(rows)
            return None
        if return_dict:
            return {row["name"]: {k: v for k, v in row.items() if k != "name"} for row in rows}
        return rows
