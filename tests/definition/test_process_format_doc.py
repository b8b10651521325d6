"""docs/process-format.md stays true: its examples load, and it documents every key."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import bpf
from bpf.definition.conditions import OPERATORS
from bpf.definition.schema import process_schema

DOC = Path(__file__).parents[2] / "docs" / "process-format.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```yaml\n(.*?)^```", TEXT, flags=re.MULTILINE | re.DOTALL)
PROCESSES = [b for b in BLOCKS if re.search(r"^process:", b, flags=re.MULTILINE)]


def test_the_doc_has_process_examples():
    assert len(PROCESSES) >= 6


@pytest.mark.parametrize("block", PROCESSES, ids=lambda b: re.search(
    r"^process: (\S+)", b, flags=re.MULTILINE).group(1))  # type: ignore[union-attr]
def test_each_process_example_loads_without_warnings(block):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bpf.loads_process(block, str(DOC))


@pytest.mark.parametrize("definition", [
    "process", "stage", "step", "branch", "condition", "outcome", "extension", "stagePatch",
    "stepsPatch", "stepChange",
])
def test_every_key_of_the_schema_is_documented(definition):
    for key in process_schema()["$defs"][definition]["properties"]:
        assert f"`{key}`" in TEXT, f"{definition} key {key!r} is not documented"


def test_every_operator_and_value_list_is_documented():
    for name in (*OPERATORS, *bpf.definition.model.STEP_TYPES):
        assert f"`{name}`" in TEXT, name
    forecast = process_schema()["$defs"]["stage"]["properties"]["forecast_category"]["enum"]
    for name in forecast:
        assert f"`{name}`" in TEXT, name


def test_the_shipped_processes_are_listed():
    for process in bpf.standard_processes():
        assert f"`{process.process}`" in TEXT
        for stage in process.stages:
            for step in stage.steps:
                assert step.field in TEXT, step.field
