"""A definition's canonical text reads back into an equal definition; its fingerprint tells
two definitions apart."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import bpf
from bpf.definition.serialize import canonical_text, fingerprint

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("processes/*.yaml"), *ROOT.glob("processes/examples/*.yaml"),
                *ROOT.glob("tests/processes/*.yaml")])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_canonical_text_reads_back_into_the_same_definition(path):
    definition = bpf.load_process(path)
    back = bpf.loads_process(canonical_text(definition), source="stored")
    assert back == attrs.evolve(definition, extends=None)
    assert canonical_text(back) == canonical_text(definition)
    assert fingerprint(back) == fingerprint(definition)


def test_any_change_changes_the_fingerprint():
    definition = bpf.standard_process("opportunity-sales")
    first = definition.stages[0]
    renamed = attrs.evolve(definition, stages=(attrs.evolve(first, name="Qualify it"),
                                               *definition.stages[1:]))
    required = attrs.evolve(definition, stages=(
        attrs.evolve(first, steps=(attrs.evolve(first.steps[0], required=True),
                                   *first.steps[1:])),
        *definition.stages[1:]))
    prints = {fingerprint(d) for d in (definition, renamed, required)}
    assert len(prints) == 3
