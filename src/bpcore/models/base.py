"""The generic model bases every bpcore model builds on."""

from __future__ import annotations

import inspect
import itertools
import os
import shutil
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import torch

from bpcore.devices import resolve_device
from bpcore.errors import BpcoreError, InputError, InputTypeError, ModelLoadError, TaskNotSupportedError
from bpcore.models.direct import through_task_front
from bpcore.naming import check_model_name
from bpcore.saved_folder import SavedFolder

if TYPE_CHECKING:
    from typing_extensions import Unpack

WEIGHTS_FILE = "model.safetensors"


class ModelIdentity(TypedDict, total=False):
    """What every model is told besides its own arguments; a family's constructor takes these as
    ``**identity: Unpack[ModelIdentity]`` and passes them on to :class:`BaseModel`.

    ``tasks`` and ``description`` default to the class's ``default_tasks`` and
    ``default_description``; ``details`` (registry metadata such as ``num_classes``) to ``{}``.
    """

    name: str | None
    description: str | None
    tasks: Sequence[str] | None
    details: Mapping[str, Any] | None
    device: str | torch.device | None


# The base is computed (torch's module metaclass, plain ``type`` today), which mypy cannot follow.
class _RecordsInitArguments(type(torch.nn.Module)):  # type: ignore[misc]
    # Saving needs the arguments a model was built with; recording them here spares every
    # subclass from having to list them again.
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        model = super().__call__(*args, **kwargs)
        if "_init_arguments" not in model.__dict__:
            signature = _init_signature(cls)
            bound = signature.bind(model, *args, **kwargs)
            arguments = dict(bound.arguments)
            arguments.pop("self", None)
            for parameter in signature.parameters.values():
                if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(arguments.pop(parameter.name, None) or {})
            arguments.pop("device", None)
            model.__dict__["_init_arguments"] = arguments
        return model


def _init_signature(cls: type[object]) -> inspect.Signature:
    # ``inspect.signature(cls)`` would give the metaclass's ``__call__(*args, **kwargs)``.
    return inspect.signature(cls.__init__)


class BaseModel(torch.nn.Module, metaclass=_RecordsInitArguments):
    """The base class of a bpcore model (the protocol: docs/plugins/protocol.md).

    Tasks call a model as ``model(task_input, task=...)`` with the input batched (a list per
    field, one entry per item; images decoded to RGB PIL images), in ``eval()`` mode without
    gradients; it returns a list with one JSON-ready answer per item (a tensor with one row
    per item for ``return_tensor=True``). To support finetuning for a task, implement
    ``process_batch(params, task)`` (one example → model-ready data), ``training_step(batch,
    task)`` (the loss, logits or vectors, per task), and optionally ``collate_batch(items,
    task)``, ``pre_finetuning(**kwargs)`` and ``configure_optimizers()``. Saving stores the
    constructor arguments and the weights; add state with :meth:`extra_config`.

    Example::

        class Shouter(BaseModel):
            def __call__(self, task_input, task="emotion"):
                return ["anger" for _ in task_input["text"]]

        bpcore.Emotion(Shouter(tasks=["emotion"]))("I am calm")      # "anger"
    """

    #: Batch size the model trains best with; finetuning starts from it.
    optimal_batch_size: int = 16
    #: Constructor arguments that name a file or folder the model reads when built (a vocabulary,
    #: a tokenizer folder): :func:`bpcore.save` copies each into the saved folder and
    #: :func:`bpcore.load` passes the copy, so such a model needs no ``save_files``/``from_saved``.
    file_arguments: ClassVar[tuple[str, ...]] = ()
    #: Finetuning options the model trains best with (any of :class:`~bpcore.TrainingOptions`),
    #: e.g. ``{"warmup_steps": 10}``; a caller's own options win.
    finetune_defaults: ClassVar[Mapping[str, Any]] = {}
    #: The tasks a model of this class serves, and its description, unless its constructor is told others.
    default_tasks: ClassVar[Sequence[str]] = ()
    default_description: ClassVar[str] = ""
    #: What the model computes with: here any callable (``None`` for a model that overrides
    #: ``__call__``). A family's class declares the type it keeps, e.g. ``model: PreTrainedModel``.
    model: Callable[..., Any] | None

    def __init__(
        self,
        model: Callable[..., Any] | None = None,
        **identity: Unpack[ModelIdentity],
    ) -> None:
        super().__init__()
        _check_identity(type(self), identity)
        self.model = model
        name = identity.get("name")
        self.name = check_model_name(name) if name is not None else None
        self.description = identity.get("description") or type(self).default_description
        self.tasks = list(identity.get("tasks") or type(self).default_tasks)
        self.details = dict(identity.get("details") or {})
        self.device = identity.get("device")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__call__" in cls.__dict__:
            # A direct call with one text or an image path answers as the task would (bpcore.models.direct).
            cls.__call__ = through_task_front(cls.__dict__["__call__"])  # type: ignore[method-assign]

    @through_task_front
    def __call__(self, task_input: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        """``model(task_input, task=..., **options)``: the wrapped callable gets the input and the options.

        Typed loosely on purpose: each model declares the task options it takes (say
        ``return_tensor``), and tasks pass only those their contract names. Called directly (not
        by a task) for a task it serves, the input may be a single item as in spec 3.4
        (``model({"text": "hi"}, task="emotion")`` answers once); see :mod:`bpcore.models.direct`.
        """
        if self.model is None:
            raise TaskNotSupportedError(f"{type(self).__name__} implements no inference")
        return self.model(task_input, **_options_without_task(*args, **kwargs))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """``torch.nn.Module``'s forward: the wrapped callable, called with the arguments as given."""
        if self.model is None:
            raise NotImplementedError
        return self.model(*args, **kwargs)

    @classmethod
    def list_models(cls) -> list[dict[str, Any]]:
        """The registered models this class (or a subclass) builds, as ``bpcore list-models`` rows.

        A factory function counts by its return annotation. Example: ``STModel.list_models()``
        lists bp-st's models.
        """
        from bpcore.plugins.registry import get_registry

        # Only the factories of this class's own package are imported to check them.
        package = cls.__module__.split(".")[0]
        rows = []
        for spec in get_registry().list_models():
            if spec.factory.partition(":")[0].split(".")[0] != package:
                continue
            built = _built_class(spec.factory)
            if built is not None and issubclass(built, cls):
                rows.append(spec.as_dict())
        return rows

    # -- what tasks ask -------------------------------------------------------------------
    def supports(self, task: str) -> bool:
        """Whether the model serves ``task`` (one of :attr:`tasks`)."""
        return task in self.tasks

    def check_task(self, task: str) -> None:
        """Refuse a ``task`` this model does not serve (a model called directly, not through a task).

        :raises bpcore.TaskNotSupportedError: the model's tasks do not include it.
        """
        if task not in self.tasks:
            label = f"{type(self).__name__} {self.name!r}" if self.name else type(self).__name__
            raise TaskNotSupportedError(f"{label} supports {self.tasks}, not {task!r}")

    def can_finetune(self, task: str) -> bool:
        """Whether the model can be finetuned for ``task``: it implements ``process_batch`` and ``training_step``."""
        return callable(getattr(self, "process_batch", None)) and callable(
            getattr(self, "training_step", None)
        )

    def finetune(self, params: Any, *args: Any, task: str | None = None, **options: Any) -> Any:
        """Spec 6.11: finetune this model for ``task`` as the task's own ``finetune`` does; returns its history.

        ``params`` is the task's finetuning data; ``task`` may be left out when the model serves
        one task; the other arguments are the task's (``validation_split``, ``epochs``,
        ``variant``...).

        Example::

            model.finetune({"texts": ["good", "bad"], "labels": ["pos", "neg"]}, task="text-classification")
        """
        from bpcore.models.direct import front_for

        return front_for(task or self._only_task())(self).finetune(params, *args, **options)

    def _only_task(self) -> str:
        if len(self.tasks) != 1:
            label = self.name or type(self).__name__
            raise InputError(
                f"{label} serves {list(self.tasks) or 'no tasks'}: name the one to finetune for, "
                "e.g. model.finetune(params, task=...)",
                field="task",
            )
        return self.tasks[0]

    def num_parameters(self) -> int:
        """The number of weights (every parameter's elements, trainable or not)."""
        return sum(parameter.numel() for parameter in self.parameters())

    @property
    def device(self) -> torch.device:
        """Where the weights are (the requested device while the model has none)."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            return tensor.device
        return self.__dict__["_device"]

    @device.setter
    def device(self, value: Any) -> None:
        self.__dict__["_device"] = resolve_device(value)

    # -- saving ---------------------------------------------------------------------------
    @property
    def init_arguments(self) -> dict[str, Any]:
        """The arguments the model was built with (without ``device``)."""
        return dict(self.__dict__.get("_init_arguments", {}))

    def save_files(self, directory: Path) -> dict[str, Any]:
        """Write what rebuilds this model into ``directory``; return JSON config for :meth:`from_saved`.

        The default stores the constructor arguments and the weights as safetensors; models
        whose arguments point at files (a hub id, a local folder) override this to copy them in.
        """
        from safetensors.torch import save_model

        save_model(self, str(directory / WEIGHTS_FILE))
        arguments = self.init_arguments
        files = copy_file_arguments(type(self).file_arguments, arguments, directory)
        return {
            "init_arguments": {**arguments, **files},
            "files": files,
            "weights": WEIGHTS_FILE,
            "extra": self.extra_config(),
        }

    def extra_config(self) -> dict[str, Any]:
        """JSON state beyond the constructor arguments (e.g. labels a finetuned head was built for)."""
        return {}

    def apply_extra_config(self, config: Mapping[str, Any]) -> None:
        """Rebuild what :meth:`extra_config` describes, before the saved weights are loaded.

        ``config`` is the dict :meth:`extra_config` returned when the model was saved.
        """

    @classmethod
    def from_saved(
        cls, directory: SavedFolder, config: Mapping[str, Any], device: str | None = None
    ) -> BaseModel:
        """Rebuild a model written by :meth:`save_files`.

        ``config`` is exactly the dict :meth:`save_files` returned (the name, description, tasks
        and details are set by the core afterwards); ``device`` is where the weights go (None:
        CUDA when available, else the CPU). ``directory`` is the saved folder, untrusted: read files only through
        ``directory.file(name)`` and ``directory.folder(name)`` (:class:`~bpcore.saved_folder.SavedFolder`),
        which refuse names that leave it. The saved weights must fit the model the saved
        arguments build (names, shapes, and floating-point where the model is).
        """
        from safetensors.torch import load_model

        from bpcore.saved_folder import check_weights

        folder = SavedFolder.of(directory)
        weights = folder.file(config.get("weights"))
        arguments = config.get("init_arguments")
        extra = config.get("extra") or {}
        if not isinstance(arguments, dict) or not isinstance(extra, dict):
            raise ModelLoadError(f"{folder.label}: init_arguments and extra must be JSON objects")
        arguments = {
            **arguments,
            **saved_file_arguments(cls.file_arguments, config.get("files") or {}, folder),
        }
        _check_sizes_before_building(cls, arguments, extra, weights)
        model = cls(**arguments, device=device)
        model.apply_extra_config(extra)
        check_weights(model, weights)
        load_model(model, str(weights), device=str(model.device))
        return model


#: The subfolder of a saved model that holds the copies of its file arguments.
FILES_FOLDER = "files"


def copy_file_arguments(
    names: Sequence[str], arguments: Mapping[str, Any], directory: Path
) -> dict[str, str]:
    """Copy the file or folder each argument in ``names`` points at into ``directory/files``.

    Returns each argument's new value: its copy's name inside the saved folder.
    """
    copied = {}
    for name in names:
        value = arguments.get(name)
        if value is None:
            continue
        source = Path(os.fspath(value))
        if not source.exists():
            raise InputError(f"{source} does not exist, so it cannot be saved with the model", field=name)
        target = f"{FILES_FOLDER}/{name}{source.suffix if source.is_file() else ''}"
        (directory / FILES_FOLDER).mkdir(exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, directory / target)
        else:
            shutil.copyfile(source, directory / target)
        copied[name] = target
    return copied


def saved_file_arguments(names: Sequence[str], files: Any, folder: SavedFolder) -> dict[str, str]:
    """The paths, inside ``folder``, of the file arguments a saved config names (untrusted)."""
    if not isinstance(files, dict) or not set(files) <= set(names):
        raise ModelLoadError(
            f"{folder.label}: files must map some of {list(names)} to names inside the folder"
        )
    paths = {}
    for name, relative in files.items():
        path = folder / relative  # refuses a name that leaves the folder
        paths[name] = str(folder.folder(relative) if path.is_dir() else folder.file(relative))
    return paths


def _built_class(target: str) -> type | None:
    """The class a factory builds: the factory itself, or a factory function's return annotation."""
    from bpcore.plugins.specs import import_object

    try:
        factory = import_object(target)
        built = factory if isinstance(factory, type) else typing.get_type_hints(factory).get("return")
    except Exception:
        return None
    return built if isinstance(built, type) else None


def _check_identity(cls: type[BaseModel], identity: Mapping[str, Any]) -> None:
    unknown = sorted(set(identity) - set(ModelIdentity.__annotations__))
    if unknown:
        raise InputTypeError(
            f"{cls.__name__} got an unexpected keyword argument {unknown[0]!r}; besides its own arguments "
            f"a model takes {', '.join(ModelIdentity.__annotations__)}",
            field=unknown[0],
        )


def _options_without_task(task: str | None = None, **options: Any) -> dict[str, Any]:
    # Binds like ``__call__(task_input, task=None, **options)``: the task is the caller's business.
    return options


def _check_sizes_before_building(
    cls: type[BaseModel], arguments: Mapping[str, Any], extra: Mapping[str, Any], weights: Path
) -> None:
    """Build the model on the ``meta`` device (no memory) and check it against the saved weights first.

    A size in the saved arguments that the weights do not have (say ``dim: 1000000000``) is
    refused before a real tensor of that size is allocated. A model that cannot be built on
    ``meta`` (it computes with real tensors in its constructor) is checked after the real build.
    """
    from bpcore.saved_folder import check_weights

    try:
        with torch.device("meta"):
            probe = cls(**arguments, device="meta")
            probe.apply_extra_config(extra)
    except BpcoreError:
        raise
    except Exception:  # noqa: BLE001 - not buildable without real tensors: checked after the real build
        return
    check_weights(probe, weights)


class PathModel(BaseModel):
    """A model built from a path or hub id by ``init_model`` (and optionally a tokenizer).

    Example::

        from transformers import AutoModelForPreTraining, AutoTokenizer
        model = PathModel("t5-base", init_model=AutoModelForPreTraining, init_tokenizer=AutoTokenizer)

    ``model_path`` is a local folder or hub id, ``tokenizer_path`` the tokenizer's (default:
    ``model_path``). ``init_model`` and ``init_tokenizer`` are functions of the path, or classes
    with a ``from_pretrained`` (as the spec passes them).
    """

    def __init__(
        self,
        model_path: str,
        init_model: Callable[[str], Any],
        tokenizer_path: str | None = None,
        init_tokenizer: Callable[[str], Any] | None = None,
        **identity: Unpack[ModelIdentity],
    ) -> None:
        super().__init__(None, **identity)
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path or model_path
        self.model = _loader(init_model)(model_path)
        self.tokenizer = _loader(init_tokenizer)(self.tokenizer_path) if init_tokenizer is not None else None
        if isinstance(self.model, torch.nn.Module):
            self.model.to(self.device)


def _loader(init: Callable[[str], Any]) -> Callable[[str], Any]:
    # A class with ``from_pretrained`` (transformers' Auto classes) loads through it, as the spec's
    # ``PathModel("t5-base", init_model=AutoModelForPreTraining)`` expects; calling the class would
    # try to build it from a path string.
    from_pretrained = getattr(init, "from_pretrained", None)
    return from_pretrained if isinstance(init, type) and callable(from_pretrained) else init
