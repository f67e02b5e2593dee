"""Helpers the core tests share: the test plugin with the tiny models, weight snapshots, subprocess env."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

import bpcore

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # the factories below are "tiny_models:..."
    sys.path.insert(0, str(TESTS_DIR))

TEXT_TASKS = ["text-vectorisation", "text-classification"]
IMAGE_TASKS = ["image-classification", "image-vectorisation", "image-text-vectorisation"]
TEXT_TO_TEXT_TASKS = ["qa", "emotion", "summarisation", "text-generation"]
TEST_PLUGIN_NAME = "bpcore-core-tests"


class TinyPlugin:
    """The plugin the core tests register at run time: the tiny models of ``tiny_models``."""

    @bpcore.hookimpl
    def register_models(self, register):
        register(
            name="tiny-text",
            factory="tiny_models:TinyTextModel",
            tasks=TEXT_TASKS,
            description="trigram embedding bag",
            aliases={"tiny-base": ["text-vectorisation"], "english-tiny": ["text-vectorisation"]},
            finetunable=TEXT_TASKS,
            default_for=TEXT_TASKS,
            details={"family": "tiny"},
        )
        register(
            name="tiny-text-wide",
            factory="tiny_models:TinyTextModel",
            tasks=TEXT_TASKS,
            description="a wider trigram embedding bag",
            finetunable=["text-vectorisation"],
            init_kwargs={"dim": 32},
        )
        register(
            name="tiny-image",
            factory="tiny_models:TinyImageModel",
            tasks=IMAGE_TASKS,
            description="tiny convolutional net",
            finetunable=IMAGE_TASKS,
            default_for=IMAGE_TASKS,
        )
        register(
            name="tiny-t2t",
            factory="tiny_models:TinyTextToTextModel",
            tasks=TEXT_TO_TEXT_TASKS,
            description="character generator",
            aliases={"english-tiny": ["emotion", "summarisation"]},
            finetunable=TEXT_TO_TEXT_TASKS,
            default_for=TEXT_TO_TEXT_TASKS,
        )

    @bpcore.hookimpl
    def register_model_classes(self, register):
        register("TinyTextModel", "tiny_models:TinyTextModel")
        register("TinyImageModel", "tiny_models:TinyImageModel")


class TinyClassesPlugin:
    """Exports every tiny model class, as a family plugin exports its classes, so saved tiny models load.

    Registered for every core test: ``bpcore.load`` only rebuilds classes that plugins register.
    """

    @bpcore.hookimpl
    def register_model_classes(self, register):
        for name in ("TinyTextModel", "TinyImageModel", "TinyTextToTextModel"):
            register(name, f"tiny_models:{name}")


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def same_state(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


def subprocess_env(extra_paths: list[Path] | None = None, **variables: str) -> dict[str, str]:
    """The environment for a ``bpcore`` subprocess: tiny_models importable, no stray BPCORE_LOAD_PLUGINS."""
    env = {key: value for key, value in os.environ.items() if key != "BPCORE_LOAD_PLUGINS"}
    paths = [str(path) for path in (extra_paths or [])] + [str(TESTS_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(variables)
    return env
