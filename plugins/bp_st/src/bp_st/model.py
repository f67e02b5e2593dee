"""STModel: any Sentence Transformers model as a bpcore text-vectorisation model."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub.errors import HFValidationError
from sentence_transformers import SentenceTransformer

from bp_st.openvino_backend import OpenVINOEncoder, check_backend
from bp_st.saved import check_saved_folder, check_tokenizer_fits
from bpcore.plugins import (
    TEXT_VECTORISATION,
    InputError,
    ModelLoadError,
    PathModel,
    SavedFolder,
    quiet,
    resolve_device,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bpcore.plugins import BarSwitch, ModelIdentity


#: The subfolder of a saved bpcore model that holds the Sentence Transformers model.
SAVED_FOLDER = "sentence-transformer"
#: Texts per forward pass at inference (``encode`` sorts by length first, so padding stays small).
ENCODE_BATCH_SIZE = 32
#: Held while an OpenVINO export is built or swapped (rare): one lock for all models keeps them copyable.
_BACKEND_LOCK = threading.Lock()


class STModel(PathModel):
    """A Sentence Transformers model for the ``text-vectorisation`` task: inference, finetuning, saving.

    ``model_path`` is a local Sentence Transformers folder or a Hugging Face hub id (downloaded
    once, so it needs the network the first time). ``init_model`` is called as
    ``init_model(model_path, device=...)`` and returns a ``SentenceTransformer``. Texts longer
    than ``max_length`` tokens are truncated. Vectors are what the model's own modules produce
    (normalised only if the model ends with a ``Normalize`` module, as all-MiniLM-L6-v2 does).
    ``backend`` runs inference in ``"torch"`` or ``"openvino"`` (CPU only, the extra
    ``bp-st[openvino]``; see :mod:`bp_st.openvino_backend` and :meth:`set_backend`): a run-time
    choice, never saved. Finetuning always trains the torch weights; with ``"openvino"`` the next
    inference after it exports the finetuned weights anew.

    Example::

        import bpcore
        from bpcore.models import STModel

        model = STModel("/models/all-MiniLM-L6-v2", name="my-minilm", max_length=256)
        tv = bpcore.TextVectorisation(model)
        tv(["iPhone 12 128GB", "Apple iPhone 12, 128 GB"])     # two 384-float vectors
        tv.finetune({"texts": ["a", "b", "c"], "groups": [0, 0, 1]}, variant="triplet")
        tv.save("my-minilm")                                   # loads offline with bpcore.load
    """

    optimal_batch_size = 32
    default_tasks = (TEXT_VECTORISATION,)
    model: SentenceTransformer

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        init_model: Callable[..., SentenceTransformer] = SentenceTransformer,
        max_length: int = 512,
        backend: str = "torch",
        **identity: Unpack[ModelIdentity],
    ) -> None:
        _check_length(max_length)
        check_backend(backend)
        target = resolve_device(identity.get("device"))

        def load(path: str) -> SentenceTransformer:
            try:
                # Built on the target device directly: loading on a default GPU and moving would
                # briefly hold the weights twice.
                with quiet(_transformers_bars()):
                    return init_model(path, device=str(target))
            except (OSError, HFValidationError) as error:
                raise _load_error(identity.get("name") or path, path, error) from error

        identity["device"] = target
        super().__init__(str(model_path), init_model=load, **identity)
        self.max_length = max_length
        self.model.max_seq_length = max_length
        self._backend = "torch"
        self._openvino: OpenVINOEncoder | None = None
        self.set_backend(backend)

    # -- backend --------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """What runs inference: ``"torch"`` or ``"openvino"``."""
        return self._backend

    def set_backend(self, backend: str) -> STModel:
        """Run inference in ``backend`` from now on (``"torch"`` or ``"openvino"``); returns the model.

        ``"openvino"`` exports the transformer now (or loads its cached export) and runs on the
        CPU only. A registered model gets the backend by name, a loaded one by this method::

            model = bpcore.models.AutoModel.from_pretrained("all-minilm-l6-v2", backend="openvino")
            tv = bpcore.TextVectorisation(bpcore.load("my-search-model").set_backend("openvino"))

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

    def _export(self) -> OpenVINOEncoder:
        return OpenVINOEncoder(self.model, label=self.name or self.model_path)

    def _openvino_encoder(self) -> OpenVINOEncoder:
        with _BACKEND_LOCK:
            if self._openvino is None:  # finetuned since the last export
                self._openvino = self._export()
            return self._openvino

    # -- inference ------------------------------------------------------------------------
    def __call__(
        self, task_input: Mapping[str, Any], task: str = TEXT_VECTORISATION, return_tensor: bool = False
    ) -> list[list[float]] | list[float] | torch.Tensor:
        """Vectorise ``task_input["text"]`` (a list of texts, or one text): lists of floats, or a tensor."""
        self.check_task(task)
        text = task_input["text"]
        single = isinstance(text, str)
        vectors = self.encode([text] if single else text)
        if single:
            vectors = vectors[0]
        return vectors if return_tensor else vectors.cpu().tolist()

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """The ``[len(texts), vector_size]`` vectors of ``texts``, computed without gradients."""
        if self._backend == "openvino":
            return self._openvino_encoder().encode(self.model, list(texts), ENCODE_BATCH_SIZE)
        return self.model.encode(
            list(texts), batch_size=ENCODE_BATCH_SIZE, convert_to_tensor=True, show_progress_bar=False
        )

    def vectorise(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sentence vectors of tokenised ``features`` (from :meth:`tokenize`), with gradients."""
        # A copy on the model's device: the Sentence Transformers modules write their outputs into the dict.
        inputs = {key: value.to(self.device) for key, value in features.items()}
        return self.model(inputs)["sentence_embedding"]

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenise ``texts`` in one call, padded to the longest and truncated to ``max_length`` tokens."""
        max_length = max_length or self.max_length
        features = self.model.preprocess(list(texts), max_length=max_length)
        # preprocess labels the batch with its modality (a string, "text"); the forward assumes text
        # without it, and only tensors can be moved to a device or gathered by accelerate.
        return {key: value for key, value in features.items() if isinstance(value, torch.Tensor)}

    # -- finetuning -----------------------------------------------------------------------
    def process_batch(self, params: Mapping[str, Any], task: str = TEXT_VECTORISATION) -> dict[str, Any]:
        """One text to vectorise (``{"text": ..., "max_length": ...}``); tokenising waits for the batch."""
        self.check_task(task)
        max_length = params.get("max_length")
        if max_length is not None and max_length > self.max_length:
            raise InputError(
                f"{max_length} is more than this model's limit of {self.max_length} tokens",
                field="max_length",
            )
        return {"text": params["text"], "max_length": max_length or self.max_length}

    def collate_batch(
        self, items: Sequence[Mapping[str, Any]], task: str = TEXT_VECTORISATION
    ) -> dict[str, torch.Tensor]:
        """Tokenise a batch of :meth:`process_batch` items together, padded only to its longest text."""
        self.check_task(task)
        return self.tokenize(
            [item["text"] for item in items], max_length=min(item["max_length"] for item in items)
        )

    def pre_finetuning(self, **told: Any) -> None:
        """Before a task finetunes this model (told nothing, for text vectorisation): the export goes stale."""
        # Also here, not only in training_step: a finetune with its own step= may never call that.
        self._openvino = None

    def training_step(
        self, batch: Mapping[str, torch.Tensor], task: str = TEXT_VECTORISATION
    ) -> torch.Tensor:
        """The ``[batch, vector_size]`` vectors of a collated batch; the task computes the loss."""
        self.check_task(task)
        # The weights are about to change: the OpenVINO export is stale, redone at the next inference.
        self._openvino = None
        return self.vectorise(batch)

    # -- saving ---------------------------------------------------------------------------
    def save_files(self, directory: Path) -> dict[str, Any]:
        """Write the Sentence Transformers model (safetensors) into ``directory / "sentence-transformer"``."""
        # No model card: writing one inspects the training state and can reach for the hub.
        with quiet(_transformers_bars()):
            self.model.save(str(Path(directory) / SAVED_FOLDER), create_model_card=False)
        return {"folder": SAVED_FOLDER, "max_length": self.max_length}

    @classmethod
    def from_saved(
        cls, directory: SavedFolder, config: Mapping[str, Any], device: str | None = None
    ) -> STModel:
        """Load a model written by :meth:`save_files`, offline, from inside its folder only.

        The Sentence Transformers folder is checked before the library reads it
        (:func:`bp_st.saved.check_saved_folder`): its modules, files, bounded sizes, and a network
        that fits the saved weights.
        """
        folder = SavedFolder.of(directory)
        inner = config.get("folder")
        # "." is the folder itself: a plain SentenceTransformer.save folder bpcore was given (bp_st.folders).
        folder = folder if inner == "." else folder.folder(inner)
        max_length = _check_length(config.get("max_length"))
        check_saved_folder(folder)
        model = cls(str(folder), max_length=max_length, device=device)
        # A saved limit beyond the encoder's positions would load, then fail on the first long text.
        positions = getattr(getattr(model.model[0], "auto_model", None), "config", None)
        limit = getattr(positions, "max_position_embeddings", None)
        if isinstance(limit, int) and max_length > limit:
            raise ModelLoadError(
                f"{folder.label} asks for max_length {max_length}, beyond the encoder's {limit} positions"
            )
        check_tokenizer_fits(model.model[0], folder.label)
        return model


def _check_length(max_length: Any) -> int:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise InputError(f"must be a positive integer, got {max_length!r}", field="max_length")
    return max_length


def _load_error(label: str, path: str, error: BaseException) -> ModelLoadError:
    return ModelLoadError.for_path(
        label,
        path,
        error,
        kind="Sentence Transformers model",
        needs="modules.json or a transformers config and weights",
        save_with="SentenceTransformer(hub_id).save(folder)",
    )


def _transformers_bars() -> BarSwitch:
    # Sentence Transformers loads and saves through transformers, whose bars ("Loading weights") quiet() turns off.
    from transformers.utils import logging as hf_logging

    return hf_logging.is_progress_bar_enabled, hf_logging.disable_progress_bar, hf_logging.enable_progress_bar
