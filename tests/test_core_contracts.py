"""The task contract is the one home of each task's rules: tasks, the kit and the guide follow it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from bpcore.contracts import CONTRACTS, tables
from bpcore.tasknames import TASKS
from bpcore.tasks import TASK_CLASSES
from bpcore.testing import samples

GUIDE = Path(__file__).parents[1] / "docs" / "plugins" / "protocol.md"


def test_every_task_has_a_contract_in_the_spec_order():
    assert tuple(CONTRACTS) == TASKS


@pytest.mark.parametrize("task", TASKS)
def test_a_task_takes_its_variants_from_its_contract(task):
    contract, cls = CONTRACTS[task], TASK_CLASSES[task]
    assert list(cls.variants) == contract.variant_names
    for variant in contract.variants:
        declared = cls.variants[variant.name]
        assert (declared.params, declared.loss, declared.grouped) == (
            variant.params,
            variant.loss,
            variant.grouped,
        )


@pytest.mark.parametrize("task", TASKS)
def test_a_task_signature_matches_its_contract(task):
    contract, cls = CONTRACTS[task], TASK_CLASSES[task]
    call = inspect.signature(cls.__call__).parameters
    assert [name for name in call if name not in ("self", *contract.item_fields)] == list(
        contract.call_options
    )
    finetune = inspect.signature(cls.finetune).parameters
    for option, default in contract.finetune_options.items():
        assert finetune[option].default == default, option


@pytest.mark.parametrize("task", TASKS)
def test_the_sample_data_fits_the_schemas(task):
    cls = TASK_CLASSES[task]
    for variant in CONTRACTS[task].variant_names:
        cls.check_params(samples.finetune_data(task, variant), variant)
    assert set(samples.inputs(task)) <= {*CONTRACTS[task].item_fields, *CONTRACTS[task].call_options}


def test_the_protocol_guide_tables_are_rendered_from_the_contracts():
    text = GUIDE.read_text(encoding="utf-8")
    assert tables.render(text) == text, (
        "docs/plugins/protocol.md is out of date: run python -m bpcore.contracts.tables docs/plugins/protocol.md"
    )
    for name in tables.TABLES:
        assert f"<!-- contract:{name} -->" in text
