"""``backend="openvino"``: a Sentence Transformers model's transformer compiled by OpenVINO, for fast CPU inference.

Only the transformer (the first module) runs in OpenVINO; tokenising, pooling and normalising
stay with Sentence Transformers, so the vectors are the torch path's (min cosine ≥ 0.9999 in f32).
The transformer is exported with ``torch.export`` (dynamic batch and sequence lengths) and
``openvino.convert_model`` once, then cached as OpenVINO IR (an XML graph and a binary of weights:
no code) under ``$BPCORE_HOME/.cache/openvino/<weights hash>-<openvino version>/`` by
:func:`bpcore.plugins.cached_export`: written to a temporary folder and renamed into place, so a
killed export leaves nothing half-written. Each load checks the cached files against the sizes
and hashes recorded at export; a folder that fails the check, or that OpenVINO cannot read, is
exported again.

OpenVINO runs bf16 where the CPU computes it natively (AMX or avx512-bf16, which OpenVINO lists
as the ``BF16`` capability), else f32; it uses as many threads as ``torch.get_num_threads()``.
OpenVINO is an extra: ``pip install 'bp-st[openvino]'``.

Example::

    from bp_st import STModel

    model = STModel("/models/all-MiniLM-L6-v2", backend="openvino")
    model({"text": ["a text", "another"]})      # two vectors, computed by OpenVINO
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from bpcore.plugins import (
    ModelLoadError,
    SavedFolder,
    cached_export,
    export_cache,
    export_folder,
    import_engine,
    quiet,
)
from bpcore.plugins import (
    check_backend as one_of_backends,
)

#: What ``backend=`` takes.
BACKENDS = ("torch", "openvino")
#: The extra that installs OpenVINO.
EXTRA = "bp-st[openvino]"
GRAPH, WEIGHTS = "model.xml", "model.bin"
#: Example texts to trace the transformer with: two, of different lengths, so that neither dimension is fixed.
EXAMPLE_TEXTS = ("An example sentence.", "Another, rather longer example sentence to vectorise.")


def check_backend(backend: Any) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else an InputError naming it."""
    return one_of_backends(backend, BACKENDS)


def import_openvino() -> Any:
    """The ``openvino`` module, or a ModelLoadError naming the extra that installs it."""
    return import_engine("openvino", EXTRA, name="OpenVINO")


def cache_root() -> Path:
    """Where exports are cached: ``$BPCORE_HOME/.cache/openvino`` (home: ``~/.cache/bpcore`` when unset)."""
    return export_cache("openvino")


class OpenVINOEncoder:
    """The transformer of ``model`` (a SentenceTransformer) compiled by OpenVINO, and an ``encode`` around it.

    ``label`` names the model in messages. Building it exports the transformer, or loads the
    cached export of the same weights. The encoder is a snapshot: weights changed afterwards
    are not seen (bp-st builds a new encoder after finetuning).

    Example::

        encoder = OpenVINOEncoder(sentence_transformer, label="all-minilm-l6-v2")
        encoder.encode(sentence_transformer, ["a text"], batch_size=32)   # a [1, 384] tensor
    """

    def __init__(self, model: SentenceTransformer, label: str) -> None:
        openvino = import_openvino()
        transformer = _transformer_of(model, label)
        self.input_names = _input_names(model, transformer)
        #: The folder of the cached export this encoder runs.
        self.folder = export_folder(
            "openvino", _version(openvino), transformer, _settings(transformer), self.input_names
        )
        self.compiled = cached_export(
            self.folder,
            export=lambda staging: _export(openvino, model, transformer, self.input_names, staging),
            load=lambda saved: _compile(openvino, saved),
            plugin="bp-st",
            what=f"{label} to OpenVINO",
        )

    def encode(self, model: SentenceTransformer, texts: Sequence[str], batch_size: int) -> torch.Tensor:
        """The ``[len(texts), vector_size]`` vectors of ``texts``, as ``model.encode`` computes them.

        Texts are sorted by length and batched as Sentence Transformers does, so padding stays small.
        """
        # An infer request per call: OpenVINO's requests are not safe to share between threads.
        request = self.compiled.create_infer_request()
        order = np.argsort([-len(text) for text in texts], kind="stable")
        prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
        vectors = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [texts[i] for i in order[start : start + batch_size]]
                features = model.preprocess(batch, prompt=prompt)
                outputs = request.infer([features[name].numpy() for name in self.input_names])
                features["token_embeddings"] = torch.from_numpy(np.array(outputs[0], copy=True))
                for module in list(model)[1:]:
                    features = module(features)
                vectors.append(features["sentence_embedding"])
        if not vectors:
            return torch.empty(0)
        return torch.cat(vectors)[torch.from_numpy(np.argsort(order))]


def _transformer_of(model: SentenceTransformer, label: str) -> torch.nn.Module:
    """The Hugging Face model inside ``model``'s first module, if it computes token embeddings from text."""
    first = model[0]
    config = getattr(first, "modality_config", None) or {}
    text = config.get("text") if isinstance(config, dict) else None
    transformer = getattr(first, "auto_model", None)
    if (
        not isinstance(transformer, torch.nn.Module)
        or not isinstance(text, dict)
        or text.get("method") != "forward"
        or getattr(first, "module_output_name", "token_embeddings") != "token_embeddings"
    ):
        raise ModelLoadError(
            f"{label}: backend='openvino' runs models whose first module is a text transformer "
            f"giving token embeddings; this one starts with {type(first).__name__}: use backend='torch'"
        )
    return transformer


def _input_names(model: SentenceTransformer, transformer: torch.nn.Module) -> list[str]:
    """The tokenizer's tensors that the transformer takes, in the tokenizer's order."""
    import inspect

    accepted = inspect.signature(transformer.forward).parameters
    features = model.preprocess(list(EXAMPLE_TEXTS))
    return [name for name, value in features.items() if isinstance(value, torch.Tensor) and name in accepted]


def _version(openvino: Any) -> str:
    # "2026.4.1-22982-e213a147257-releases/2026/4": the release is what changes the IR it writes.
    return str(openvino.__version__).split("-")[0]


def _settings(transformer: torch.nn.Module) -> dict[str, Any]:
    """The transformer's configuration: it changes what the graph computes as much as the weights do."""
    config = getattr(transformer, "config", None)
    settings = config.to_dict() if config is not None else {}
    settings.pop("_name_or_path", None)  # where the weights were read from changes nothing
    return settings


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
    openvino: Any,
    model: SentenceTransformer,
    transformer: torch.nn.Module,
    input_names: list[str],
    staging: Path,
) -> dict[str, Any]:
    """Write ``transformer``'s OpenVINO IR into ``staging``; return what to record of it."""
    graph = _convert(openvino, model, transformer, input_names)
    openvino.save_model(graph, str(staging / GRAPH), compress_to_fp16=False)
    return {"format": "openvino-ir", "openvino": str(openvino.__version__), "inputs": input_names}


def _convert(
    openvino: Any, model: SentenceTransformer, transformer: torch.nn.Module, input_names: list[str]
) -> Any:
    """The transformer as an OpenVINO model with dynamic batch and sequence lengths.

    ``torch.export`` first: OpenVINO's own TorchScript tracing fails on transformers 5's attention masks.
    """
    features = model.preprocess(list(EXAMPLE_TEXTS))
    example = tuple(features[name] for name in input_names)
    positions = getattr(getattr(transformer, "config", None), "max_position_embeddings", None) or 4096
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    sequence = torch.export.Dim("sequence", min=1, max=int(positions))
    # One entry for the forward's ``*tensors``, holding a shape per tensor.
    shapes = (tuple({0: batch, 1: sequence} for _ in input_names),)
    training = transformer.training
    transformer.eval()  # no dropout in the graph, whatever mode the model is in
    try:
        with quiet(), torch.no_grad():
            program = torch.export.export(
                _TokenEmbeddings(transformer, input_names), example, dynamic_shapes=shapes
            )
            graph = openvino.convert_model(program)
    finally:
        transformer.train(training)
    for port, name in zip(graph.inputs, input_names):
        port.get_tensor().set_names({name})
    return graph


class _TokenEmbeddings(torch.nn.Module):
    """The transformer called with positional tensors (named by ``input_names``), giving its last hidden state."""

    def __init__(self, transformer: torch.nn.Module, input_names: list[str]) -> None:
        super().__init__()
        self.transformer = transformer
        self.input_names = input_names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        inputs = dict(zip(self.input_names, tensors))
        return self.transformer(**inputs, return_dict=True).last_hidden_state
