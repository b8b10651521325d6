"""Every input of the official YAML test suite gives a definition or a located DefinitionError.

The corpus lives outside the repository (``shared/corpora/yaml-test-suite`` beside the checkout,
or wherever BPF_YAML_TEST_SUITE points).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

import bpf
import bpf.definition._yaml as located_yaml


def _corpus() -> Path | None:
    candidates = [os.environ.get("BPF_YAML_TEST_SUITE"),
                  Path(__file__).parents[2] / "shared/corpora/yaml-test-suite",
                  Path(__file__).parents[3] / "shared/corpora/yaml-test-suite"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "cases").is_dir():
            return Path(candidate)
    return None


CORPUS = _corpus()
#: CI sets BPF_REQUIRE_YAML_TEST_SUITE=1: there a missing corpus fails instead of skipping.
REQUIRED = os.environ.get("BPF_REQUIRE_YAML_TEST_SUITE") == "1"
pytestmark = pytest.mark.skipif(
    CORPUS is None and not REQUIRED,
    reason="yaml-test-suite corpus not found: set BPF_YAML_TEST_SUITE or put shared/ beside "
           "the checkout",
)


def _outcome(path: Path) -> bpf.ProcessDefinition | bpf.DefinitionError:
    try:
        return bpf.load_process(path)
    except bpf.DefinitionError as error:
        return error


def _check_all() -> dict[str, object]:
    assert CORPUS is not None
    outcomes: dict[str, object] = {}
    for path in sorted((CORPUS / "cases").glob("*.yaml")):
        outcome = _outcome(path)  # any other exception fails the test
        if isinstance(outcome, bpf.DefinitionError):
            assert outcome.problems, path
            for problem in outcome.problems:
                assert problem.source == str(path)
                assert problem.line >= 1 and problem.column >= 1, problem
                assert "unexpected" not in problem.message or "invalid YAML" in problem.message
        outcomes[path.stem] = outcome
    return outcomes


def test_every_case_gives_a_definition_or_a_located_error():
    started = time.perf_counter()
    outcomes = _check_all()
    assert len(outcomes) == 402
    assert time.perf_counter() - started < 3.0


def test_invalid_cases_are_definition_errors():
    assert CORPUS is not None
    invalid = (CORPUS / "invalid.txt").read_text().split()
    assert len(invalid) == 94
    for name in invalid:
        assert isinstance(_outcome(CORPUS / "cases" / f"{name}.yaml"), bpf.DefinitionError), name


def test_the_pure_python_parser_gives_the_same_guarantees(monkeypatch):
    # Without libyaml, PyYAML's own parser runs: it must be as safe.
    class PurePythonLoader(yaml.SafeLoader):
        pass

    monkeypatch.setattr(located_yaml, "_Loader", PurePythonLoader)
    _check_all()
