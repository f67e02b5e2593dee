"""``backend="openvino"``: a Sentence Transformers model's transformer compiled by OpenVINO, for fast CPU inference.

Only the transformer (the first module) runs in OpenVINO; tokenising, pooling and normalising
stay with Sentence Transformers, so the vectors are the torch path's (min cosine ≥ 0.9999 in f32).
The transformer is exported with ``torch.export`` (dynamic batch and sequence lengths) and
``openvino.convert_model`` once, then cached as OpenVINO IR (an XML graph and a binary of weights:
no code) under ``$BPCORE_HOME/.cache/openvino/<weights hash>-<openvino version>/``, written to a
temporary folder and renamed into place, so a killed export leaves nothing half-written. Each
load checks the cached files against the sizes and hashes recorded at export; a folder that
fails the check, or that OpenVINO cannot read, is exported again.

OpenVINO runs bf16 where the CPU computes it natively (AMX or avx512-bf16, which OpenVINO lists
as the ``BF16`` capability), else f32; it uses as many threads as ``torch.get_num_threads()``.
OpenVINO is an extra: ``pip install 'bp-st[openvino]'``.

Example::

    from bp_st import STModel

    model = STModel("/models/all-MiniLM-L6-v2", backend="openvino")
    model({"text": ["a text", "another"]})      # two vectors, computed by OpenVINO
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from bpcore.plugins import InputError, ModelLoadError, SavedFolder, quiet

#: What ``backend=`` takes.
BACKENDS = ("torch", "openvino")
#: The extra that installs OpenVINO.
EXTRA = "bp-st[openvino]"
#: The record of an export, written last into its folder.
RECORD = "export.json"
GRAPH, WEIGHTS = "model.xml", "model.bin"
#: Example texts to trace the transformer with: two, of different lengths, so that neither dimension is fixed.
EXAMPLE_TEXTS = ("An example sentence.", "Another, rather longer example sentence to vectorise.")


def check_backend(backend: Any) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else an InputError naming it."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InputError(f"expected one of {', '.join(BACKENDS)}, got {backend!r}", field="backend")
    return backend


def import_openvino() -> Any:
    """The ``openvino`` module, or a ModelLoadError naming the extra that installs it."""
    try:
        import openvino
    except ImportError as error:
        raise ModelLoadError(
            f"backend='openvino' needs OpenVINO, which is not installed: pip install '{EXTRA}' "
            f"(or use backend='torch') [{type(error).__name__}: {error}]"
        ) from error
    return openvino


def cache_root() -> Path:
    """Where exports are cached: ``$BPCORE_HOME/.cache/openvino`` (home: ``~/.cache/bpcore`` when unset)."""
    home = Path(os.environ.get("BPCORE_HOME") or Path.home() / ".cache" / "bpcore")
    return home / ".cache" / "openvino"


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
        key = f"{_weights_hash(transformer, self.input_names)}-{_version(openvino)}"
        #: The folder of the cached export this encoder runs.
        self.folder = cache_root() / key
        self.compiled = _load_or_export(openvino, model, transformer, self.input_names, self.folder, label)

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


def _weights_hash(transformer: torch.nn.Module, input_names: Sequence[str]) -> str:
    """A hash of what the exported graph computes: the architecture, its config, inputs and every weight."""
    digest = hashlib.sha256()
    config = getattr(transformer, "config", None)
    settings = config.to_dict() if config is not None else {}
    settings.pop("_name_or_path", None)  # where the weights were read from changes nothing
    digest.update(type(transformer).__qualname__.encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(json.dumps(list(input_names)).encode())
    for name, tensor in transformer.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()[:24]


def _version(openvino: Any) -> str:
    # "2026.4.1-22982-e213a147257-releases/2026/4": the release is what changes the IR it writes.
    return str(openvino.__version__).split("-")[0]


def _load_or_export(
    openvino: Any,
    model: SentenceTransformer,
    transformer: torch.nn.Module,
    input_names: list[str],
    folder: Path,
    label: str,
) -> Any:
    """The compiled cached export in ``folder``; exported first when missing, again when unreadable."""
    if folder.exists():
        try:
            return _compile(openvino, _checked_graph(folder, input_names))
        except (ModelLoadError, RuntimeError, OSError) as error:
            print(
                f"bp-st: the OpenVINO cache {folder} is unusable ({error}); exporting again", file=sys.stderr
            )
            shutil.rmtree(folder, ignore_errors=True)
    _export(openvino, model, transformer, input_names, folder, label)
    return _compile(openvino, _checked_graph(folder, input_names))


def _checked_graph(folder: Path, input_names: list[str]) -> Any:
    """The IR files of ``folder`` (paths), after checking them against the export's record."""
    saved = SavedFolder(folder)
    record = saved.read_json(RECORD)
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or record.get("inputs") != input_names or set(files) != {GRAPH, WEIGHTS}:
        raise ModelLoadError(f"{RECORD} does not describe this model's export")
    for name, expected in files.items():
        if _describe(saved.file(name)) != expected:
            raise ModelLoadError(f"{name} differs from what was exported")
    return saved.file(GRAPH), saved.file(WEIGHTS)


def _compile(openvino: Any, files: tuple[Path, Path]) -> Any:
    core = openvino.Core()
    graph = core.read_model(str(files[0]), str(files[1]))
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
    folder: Path,
    label: str,
) -> None:
    """Export ``transformer`` into ``folder`` through a temporary folder beside it, renamed into place."""
    print(f"bp-st: exporting {label} to OpenVINO, once (cached in {folder})", file=sys.stderr)
    started = time.monotonic()
    folder.parent.mkdir(parents=True, exist_ok=True)
    _clean_killed_exports(folder)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}-", dir=folder.parent))
    try:
        graph = _convert(openvino, model, transformer, input_names)
        openvino.save_model(graph, str(temporary / GRAPH), compress_to_fp16=False)
        record = {
            "format": "openvino-ir",
            "openvino": str(openvino.__version__),
            "exported_seconds": round(time.monotonic() - started, 1),
            "inputs": input_names,
            "files": {name: _describe(temporary / name) for name in (GRAPH, WEIGHTS)},
        }
        (temporary / RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
        try:
            temporary.rename(folder)
        except OSError:
            if not folder.exists():
                raise  # otherwise another process exported the same weights first: theirs is used
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _clean_killed_exports(folder: Path) -> None:
    """Remove the temporary folders that killed exports of ``folder`` left behind (their process is gone)."""
    prefix = f".{folder.name}."
    for leftover in folder.parent.glob(f"{prefix}*"):
        pid = leftover.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


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


def _describe(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}
