"""``backend="openvino"``: a transformers classifier's logits computed by OpenVINO, for fast CPU inference.

For the zero-shot NLI model (:class:`~bp_hf.nli.HFNLIModel`) and the classifier finetuned on your
labels (:class:`~bp_hf.sequence_classification.HFSeqTCModel`), both subclasses of
:class:`HFClassifier`. Only the classifier's forward (token tensors in, logits out) runs in OpenVINO: tokenising, batching
and turning logits into answers are the torch path's code, so the answers are the torch path's
(probabilities within 1e-4 in f32). The forward is exported with ``torch.export`` (dynamic batch
and sequence lengths) and ``openvino.convert_model`` once, then cached as OpenVINO IR (an XML
graph and a binary of weights: no code) under
``$BPCORE_HOME/.cache/openvino/<weights hash>-<openvino version>/`` by
:func:`bpcore.plugins.cached_export`, which checks the files on every load and exports again
when they are damaged.

OpenVINO runs bf16 where the CPU computes it natively (AMX or avx512-bf16, which OpenVINO lists
as the ``BF16`` capability), else f32; it uses as many threads as ``torch.get_num_threads()``.
OpenVINO is an extra: ``pip install 'bp-hf[openvino]'``.

Example::

    import bpcore
    from bp_hf import HFNLIModel

    tc = bpcore.TextClassification(HFNLIModel("/models/deberta-base-mnli", backend="openvino"))
    tc("I am mad because my product broke.", ["product issue", "nature"])
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedModel

from bp_hf.base import HFModel
from bpcore.plugins import (
    InputError,
    ModelLoadError,
    SavedFolder,
    cached_export,
    export_folder,
    import_engine,
    quiet,
)
from bpcore.plugins import (
    check_backend as one_of_backends,
)

if TYPE_CHECKING:
    from pathlib import Path

    from typing_extensions import Self, Unpack

    from bpcore.plugins import ModelIdentity

#: What ``backend=`` takes.
BACKENDS = ("torch", "openvino")
#: The extra that installs OpenVINO.
EXTRA = "bp-hf[openvino]"
GRAPH, WEIGHTS = "model.xml", "model.bin"
#: Held while an OpenVINO export is built or swapped (rare): one lock for all models keeps them copyable.
_BACKEND_LOCK = threading.Lock()


def check_backend(backend: Any) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else an InputError naming it."""
    return one_of_backends(backend, BACKENDS)


def import_openvino() -> Any:
    """The ``openvino`` module, or a ModelLoadError naming the extra that installs it."""
    return import_engine("openvino", EXTRA, name="OpenVINO")


class HFClassifier(HFModel):
    """An HFModel whose answers come from its classifier's logits, computed by torch or by OpenVINO.

    ``backend`` runs inference in ``"torch"`` or ``"openvino"`` (CPU only, the extra
    ``bp-hf[openvino]``; see :meth:`set_backend`): a run-time choice, never saved. Finetuning
    always trains the torch weights; with ``"openvino"`` the next inference after it exports the
    finetuned weights anew. A subclass tokenises as it always does, passes each padded batch to
    :meth:`classifier_logits`, and gives an example batch (:meth:`example_batch`) to export with.

    Example::

        from bp_hf import HFSeqTCModel

        model = HFSeqTCModel("/models/my-finetuned-bert", backend="openvino")
        model.logits(["a text", "another"])        # [2, labels], computed by OpenVINO
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        model_class: Any = None,
        tokenizer_class: Any = AutoTokenizer,
        model_kwargs: Mapping[str, Any] | None = None,
        backend: str = "torch",
        **identity: Unpack[ModelIdentity],
    ) -> None:
        check_backend(backend)
        super().__init__(model_path, tokenizer_path, model_class, tokenizer_class, model_kwargs, **identity)
        self._backend = "torch"
        self._openvino: OpenVINOClassifier | None = None
        self.set_backend(backend)

    @property
    def backend(self) -> str:
        """What runs inference: ``"torch"`` or ``"openvino"``."""
        return self._backend

    def set_backend(self, backend: str) -> Self:
        """Run inference in ``backend`` from now on (``"torch"`` or ``"openvino"``); returns the model.

        ``"openvino"`` exports the classifier now (or loads its cached export) and runs on the
        CPU only. It is how a registered model gets the backend::

            model = bpcore.models.AutoModel.from_pretrained("deberta-base-mnli", device="cpu")
            tc = bpcore.TextClassification(model.set_backend("openvino"))

        Call it again after changing the weights by hand: the export is a snapshot of them.
        """
        check_backend(backend)
        if backend == "openvino" and self.device.type != "cpu":
            raise InputError(
                f"backend='openvino' runs on the CPU, and this model is on {self.device}: load it with device='cpu'",
                field="backend",
            )
        with _BACKEND_LOCK:
            self._openvino = self._export() if backend == "openvino" else None
            self._backend = backend
        return self

    def example_batch(self) -> dict[str, torch.Tensor]:
        """A padded batch like those inference passes to :meth:`classifier_logits`: two rows, of different lengths."""
        return self.tokenize(["An example text.", "Another, rather longer example text to classify."])

    def classifier_logits(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The float ``[rows, classes]`` logits of a padded batch, on the CPU, from the backend in use."""
        if self._backend == "openvino":
            return self._openvino_classifier().logits(batch)
        return self.model(**batch).logits.float().cpu()

    def stale_export(self) -> None:
        """The weights are about to change (finetuning): the next inference exports them anew."""
        self._openvino = None

    def _export(self) -> OpenVINOClassifier:
        return OpenVINOClassifier(self.model, self.example_batch(), label=self.name or self.model_path)

    def _openvino_classifier(self) -> OpenVINOClassifier:
        with _BACKEND_LOCK:
            if self._openvino is None:  # finetuned since the last export
                self._openvino = self._export()
            return self._openvino


class OpenVINOClassifier:
    """The logits forward of a transformers classifier compiled by OpenVINO.

    ``example`` is a padded batch of the tensors inference will pass (their names and order are
    the graph's inputs); ``label`` names the model in messages. Building it exports the
    classifier, or loads the cached export of the same weights. It is a snapshot: weights
    changed afterwards are not seen.

    Example::

        classifier = OpenVINOClassifier(model.model, model.tokenize(["a", "b c"]), label="my-bert")
        classifier.logits(model.tokenize(["a text"]))          # a [1, classes] float tensor
    """

    def __init__(self, model: PreTrainedModel, example: Mapping[str, torch.Tensor], label: str) -> None:
        openvino = import_openvino()
        self.input_names = list(example)
        #: The folder of the cached export this classifier runs.
        self.folder = export_folder(
            "openvino", _version(openvino), model, _settings(model), self.input_names, "logits"
        )
        self.compiled = cached_export(
            self.folder,
            export=lambda staging: _export(openvino, model, example, staging, label),
            load=lambda saved: _compile(openvino, saved),
            plugin="bp-hf",
            what=f"{label} to OpenVINO",
        )

    def logits(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The float ``[rows, classes]`` logits of a padded batch (tensors named as the example's)."""
        # An infer request per call: OpenVINO's requests are not safe to share between threads.
        outputs = self.compiled.create_infer_request().infer(
            [batch[name].cpu().numpy() for name in self.input_names]
        )
        return torch.from_numpy(np.array(outputs[0], dtype=np.float32, copy=True))


def _settings(model: PreTrainedModel) -> dict[str, Any]:
    """The model's configuration: it changes what the graph computes as much as the weights do."""
    settings = model.config.to_dict()
    settings.pop("_name_or_path", None)  # where the weights were read from changes nothing
    return settings


def _version(openvino: Any) -> str:
    # "2026.4.1-22982-e213a147257-releases/2026/4": the release is what changes the IR it writes.
    return str(openvino.__version__).split("-")[0]


def _compile(openvino: Any, saved: SavedFolder) -> Any:
    core = openvino.Core()
    graph = core.read_model(str(saved.file(GRAPH)), str(saved.file(WEIGHTS)))
    capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    config = {
        "INFERENCE_PRECISION_HINT": "bf16" if "BF16" in capabilities else "f32",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
    }
    return core.compile_model(graph, "CPU", config)


def _export(
    openvino: Any, model: PreTrainedModel, example: Mapping[str, torch.Tensor], staging: Path, label: str
) -> dict[str, Any]:
    """Write ``model``'s logits forward as OpenVINO IR into ``staging``; return what to record of it."""
    graph = _convert(openvino, model, example, label)
    openvino.save_model(graph, str(staging / GRAPH), compress_to_fp16=False)
    return {"format": "openvino-ir", "openvino": str(openvino.__version__), "inputs": list(example)}


def _convert(openvino: Any, model: PreTrainedModel, example: Mapping[str, torch.Tensor], label: str) -> Any:
    """The logits forward as an OpenVINO model whose inputs take any batch and sequence length.

    ``torch.export`` first: OpenVINO's own TorchScript tracing fails on transformers 5's attention
    masks. ``Dim.AUTO`` rather than fixed bounds: some models' code (XLNet's) only traces with the
    bounds torch works out.
    """
    names = list(example)
    shapes = (tuple({0: torch.export.Dim.AUTO, 1: torch.export.Dim.AUTO} for _ in names),)
    training = model.training
    model.eval()  # no dropout in the graph, whatever mode the model is in
    try:
        with quiet(), torch.no_grad():
            program = torch.export.export(
                _Logits(model, names), tuple(example.values()), dynamic_shapes=shapes
            )
            graph = openvino.convert_model(program)
    except Exception as error:  # torch.export and OpenVINO fail in many ways on code they cannot capture
        raise ModelLoadError(
            f"{label}: cannot export {type(model).__name__} to OpenVINO ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:300]}): use backend='torch'"
        ) from error
    finally:
        model.train(training)
    if any(not size.is_dynamic for port in graph.inputs for size in port.get_partial_shape()):
        raise ModelLoadError(f"{label}: the OpenVINO export of {type(model).__name__} fixed its input shapes")
    for port, name in zip(graph.inputs, names):
        port.get_tensor().set_names({name})
    return graph


class _Logits(torch.nn.Module):
    """The classifier called with positional tensors (named by ``names``), giving its logits."""

    def __init__(self, model: PreTrainedModel, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors)), return_dict=True).logits
