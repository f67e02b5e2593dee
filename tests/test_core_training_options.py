"""The finetuning options are declared once: every finetune signature, every check, the command
line's ``--set`` and the documentation site's list come from that declaration; ``learning_rate`` sets the rate
of the optimizer the model or the task builds."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from core_helpers import subprocess_env
from test_core_cli_finetune import CLASSIFICATION, run_cli, write_jsonl
from test_core_training import PAIR_PARAMS
from tiny_models import TinyTextModel

import bpcore
from bpcore.tasks import TASK_CLASSES
from bpcore.training.options import ALL, TRAINING, options_markdown

pytestmark = pytest.mark.filterwarnings("ignore::bpcore.training.BpcoreWarning")

FINETUNING_PAGE = Path(__file__).resolve().parents[1] / "docs" / "finetuning.md"
QUICK = {
    "validation_split": (list(range(16)), list(range(16, 20))),
    "epochs": 1,
    "seed": 0,
    "progress": False,
}


@pytest.fixture
def classification_file(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "train.jsonl", [{"texts": t, "labels": label} for t, label in CLASSIFICATION]
    )


def test_the_sites_option_list_is_the_declaration():
    # docs/hooks/bpcore_docs.py writes options_markdown() where the page holds the marker.
    assert "<!-- bpcore:finetune-options -->" in FINETUNING_PAGE.read_text(encoding="utf-8")
    listed = re.findall(r"^- `(\w+)`", options_markdown(), re.MULTILINE)
    assert listed and sorted(listed) == sorted(ALL)


@pytest.mark.parametrize("task", sorted(TASK_CLASSES), ids=str)
def test_every_finetune_signature_shows_every_option_with_its_declared_default(task):
    parameters = inspect.signature(TASK_CLASSES[task].finetune).parameters
    assert list(parameters)[:3] == ["self", "params", "validation_split"]
    assert parameters["validation_split"].default == ALL["validation_split"].option.default
    for name, entry in TRAINING.items():
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, (task, name)
        assert parameters[name].default == entry.option.default, (task, name)


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("learning_rate", 0),
        ("learning_rate", -1e-3),
        ("learning_rate", "fast"),
        ("learning_rate", float("inf")),
    ],
)
def test_a_bad_learning_rate_names_the_keyword(keyword, value):
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.TextVectorisation(TinyTextModel()).finetune(PAIR_PARAMS, **QUICK, **{keyword: value})
    assert caught.value.field == keyword


def test_learning_rate_sets_the_rate_of_the_models_own_optimizer():
    torch.manual_seed(0)
    history = bpcore.TextVectorisation(TinyTextModel()).finetune(PAIR_PARAMS, **QUICK, learning_rate=0.2)
    # The tiny model's own optimizer runs at 5e-2.
    assert history.epochs[0].learning_rate == pytest.approx(0.2)


class TwoGroups(TinyTextModel):
    """A model whose optimizer has two param groups, the second at a tenth of the first's rate and
    carrying another rate of its own (as a warm-up's target would)."""

    def configure_optimizers(self) -> torch.optim.Optimizer:
        parameters = list(self.parameters())
        self.optimizer = torch.optim.SGD(
            [
                {"params": parameters[:1], "lr": 1e-2},
                {"params": parameters[1:], "lr": 1e-3, "target_lr": 4e-3},
            ]
        )
        return self.optimizer


def test_learning_rate_scales_param_groups_keeping_their_ratio():
    model = TwoGroups()
    bpcore.TextVectorisation(model).finetune(PAIR_PARAMS, **QUICK, learning_rate=0.1)
    first, second = model.optimizer.param_groups
    assert first["lr"] == pytest.approx(0.1)
    assert second["lr"] == pytest.approx(0.01) and second["target_lr"] == pytest.approx(0.04)


def test_learning_rate_with_your_own_optimizer_is_refused():
    task = bpcore.TextVectorisation(TinyTextModel())
    own = lambda: torch.optim.SGD(task.model.parameters(), lr=0.1)  # noqa: E731
    with pytest.raises(bpcore.InputError, match="configure_optimizers") as caught:
        task.finetune(PAIR_PARAMS, **QUICK, learning_rate=0.2, configure_optimizers=own)
    assert caught.value.field == "learning_rate"


def test_the_command_line_sets_the_learning_rate(tiny_plugin, classification_file, capsys):
    code, out, err = run_cli(
        capsys, "finetune", "text-classification", "--data", str(classification_file), "--model", "tiny-text",
        "--epochs", "1", "--seed", "0", "--json", "--quiet", "--set", "learning_rate=0.125",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["epochs"][0]["learning_rate"] == pytest.approx(0.125)


@pytest.mark.parametrize("keyword", [name for name, entry in TRAINING.items() if not entry.option.cli])
def test_the_command_line_refuses_only_python_objects(tiny_plugin, classification_file, capsys, keyword):
    code, _, err = run_cli(
        capsys, "finetune", "text-classification", "--data", str(classification_file), "--set", f"{keyword}=1"
    )
    assert code == 2 and f"--set {keyword}: {keyword} cannot be given on the command line" in err


def test_the_command_line_checks_every_other_option_by_its_declaration(
    tiny_plugin, classification_file, capsys
):
    for name, entry in TRAINING.items():
        if not entry.option.cli:
            continue
        # A list is no value of any option's type but log_with's; log_with takes no list of numbers.
        code, _, err = run_cli(
            capsys, "finetune", "text-classification", "--data", str(classification_file),
            "--model", "tiny-text", "--set", f"{name}=[1]",
        )  # fmt: skip
        assert code == 2 and f"bpcore: error: {name}: " in err, (name, err)


def test_the_options_import_no_torch():
    script = "import sys, bpcore.training, bpcore.training.options; print(sorted(m for m in ('torch', 'accelerate') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
