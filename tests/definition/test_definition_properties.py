"""Invariants of the loader over generated input: a definition or a located DefinitionError."""

from __future__ import annotations

import warnings

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bpf
from bpf.definition.schema import process_schema

_DEFS = process_schema()["$defs"]
KEYS = sorted({k for d in _DEFS.values() for k in d.get("properties", {})} | {"gtt", "nmae"})
WORDS = ["qualify", "develop", "close", "choice", "money", "true", "Qualify", "x", "", "a b"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 200_000), st.floats(allow_nan=False),
    st.sampled_from(WORDS), st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=8)


def _check(text: str | bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            bpf.loads_process(text, "gen.yaml")
        except bpf.DefinitionError as error:
            assert error.problems
            lines = (text.decode("utf-8", "replace") if isinstance(text, bytes) else text)
            last = lines.count("\n") + 2
            for problem in error.problems:
                assert problem.source == "gen.yaml"
                assert 1 <= problem.line <= last, problem
                assert problem.column >= 1, problem


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text(text):
    _check(text)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes(data):
    _check(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_mapping_of_process_keys(document):
    _check(yaml.safe_dump(document, sort_keys=False))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=6), max_size=4))
def test_any_stages_of_a_process(stages):
    document = {"process": "p", "name": "P", "entity": "account", "stages": stages}
    _check(yaml.safe_dump(document, sort_keys=False))
