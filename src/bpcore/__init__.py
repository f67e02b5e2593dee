"""bpcore: use, finetune and save state-of-the-art models for nine tasks, with model families as plugins.

Example::

    import bpcore

    tv = bpcore.TextVectorisation()          # the default: all-MiniLM-L6-v2 (bp-st)
    vectors = tv(["iPhone 12 128GB", "Apple iPhone 12, 128 GB"])
    bpcore.cosine_similarity(vectors[0], vectors[1])

Importing bpcore imports no torch and no model library; they load with the first model.
"""

from bpcore import models
from bpcore.errors import (
    AuthenticationError,
    BpcoreError,
    InputError,
    InputTypeError,
    ModelLoadError,
    ModelNotFoundError,
    ModelProtocolError,
    PluginNotInstalledError,
    ServerError,
    TaskNotSupportedError,
    TrainingError,
    UnsafeLoadError,
)
from bpcore.evaluation import Metrics
from bpcore.files import run_file
from bpcore.functions import cosine_similarity
from bpcore.plotting import plot_history
from bpcore.plugins.hookspecs import hookimpl
from bpcore.plugins.manager import unregister_plugin
from bpcore.plugins.registry import register_plugin
from bpcore.remote import upload
from bpcore.saving import load, save
from bpcore.serving import serve
from bpcore.tasknames import TASKS
from bpcore.tasks import (
    QA,
    Emotion,
    ImageClassification,
    ImageTextVectorisation,
    ImageVectorisation,
    Summarisation,
    TextClassification,
    TextGeneration,
    TextVectorisation,
)
from bpcore.tasks.base import TrainingOptions

__version__ = "0.2.0"

__all__ = [
    "QA",
    "AuthenticationError",
    "TASKS",
    "BpcoreError",
    "Emotion",
    "ImageClassification",
    "ImageTextVectorisation",
    "ImageVectorisation",
    "InputError",
    "InputTypeError",
    "Metrics",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelProtocolError",
    "PluginNotInstalledError",
    "ServerError",
    "Summarisation",
    "TaskNotSupportedError",
    "TextClassification",
    "TextGeneration",
    "TextVectorisation",
    "TrainingError",
    "TrainingOptions",
    "UnsafeLoadError",
    "cosine_similarity",
    "hookimpl",
    "load",
    "models",
    "plot_history",
    "register_plugin",
    "run_file",
    "save",
    "serve",
    "unregister_plugin",
    "upload",
]
