"""The pytest plugin, as a user's project runs it: real pytest processes in a temporary project."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from kit_support import DEAL_PATH

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project with their process in processes/deal.yaml."""
    (pytester.path / "processes").mkdir()
    shutil.copy(DEAL_PATH, pytester.path / "processes" / "deal.yaml")
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_every_process_yaml_in_the_folder_is_checked(project: pytest.Pytester) -> None:
    project.makepyfile(test_nothing="def test_nothing(): pass")
    # Coverage is part of the result, and the kit promises it at its default of 100 examples:
    # 30 once left outcome 'won' unreached (6 finishes, none of them 'won').
    result = run(project, "--bpf-processes", "processes", "--bpf-max-examples", "100", "-v")
    result.stdout.fnmatch_lines([
        "*collected 2 items*",
        "*test_nothing.py::test_nothing PASSED*",
        "*processes/deal.yaml::check_process PASSED*",
        "*bpf process checks*",
        "deal: * examples, * steps in *s; stages 4/4, branches 4/4, outcomes 2/2; refused: *",
    ])
    assert result.ret == 0


def test_a_violation_fails_with_the_readable_counterexample(project: pytest.Pytester) -> None:
    # The user's engine leaves the pipeline field alone: a conftest plants that fault, through
    # public seams only (every bpf.Engine gets a stage_changed hook that takes the field off).
    project.makeconftest(textwrap.dedent("""
        import bpf

        real = bpf.Engine.__init__

        def unwrite_pipeline_field(event):
            event.flow.record.pop(event.flow.process.pipeline_field, None)

        def init(self, *args, **kwargs):
            real(self, *args, **kwargs)
            self.on("stage_changed", unwrite_pipeline_field)

        bpf.Engine.__init__ = init
    """))
    result = run(project, "--bpf-processes", "processes/deal.yaml", "--bpf-max-examples", "20")
    result.stdout.fnmatch_lines([
        "*_ check_process deal.yaml _*",
        "process 'deal' (processes/deal.yaml) misbehaved; shrunk counterexample:",
        "  1. opportunity-1 = {}",
        "  2. start deal on opportunity-1 as maria (salesperson) → started at qualify",
        "  then: opportunity-1.stepname is None; the last stage change on opportunity-1 was "
        "deal start to qualify (1-Qualify)",
        "property broken (pipeline): *",
        "FAILED processes/deal.yaml::check_process*",
    ])
    assert "Traceback" not in result.stdout.str()
    assert result.ret == 1


def test_an_invalid_process_fails_with_its_located_problems(project: pytest.Pytester) -> None:
    (project.path / "processes" / "broken.yaml").write_text(
        "process: broken\nname: Broken\nentity: opportunity\nstages: []\n"
    )
    result = run(project, "--bpf-processes", "processes", "--bpf-max-examples", "30")
    result.stdout.fnmatch_lines(["*broken.yaml:4:*", "*1 failed, 1 passed*"])


def test_the_checks_can_be_selected_and_seeded(project: pytest.Pytester) -> None:
    project.makepyfile(test_nothing="def test_nothing(): pass")
    result = run(project, "--bpf-processes", "processes", "-m", "bpf_process",
                 "--bpf-max-examples", "5", "--bpf-seed", "3", "--bpf-store", "sqlite",
                 "--bpf-no-coverage")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_stage_no_flow_can_enter_fails_the_check_and_says_why(
        project: pytest.Pytester) -> None:
    # A typo in a branch field: no stage collects `riks`, so no user ever enters CAB review.
    (project.path / "processes" / "change.yaml").write_text(textwrap.dedent("""\
        process: change
        name: Change
        entity: change
        stages:
          - id: assess
            name: Assess
            steps:
              - {field: risk, label: Risk, type: choice, choices: [low, high], required: true}
            next:
              - when: {field: riks, equals: high}
                stage: cab-review
              - stage: done
          - {id: cab-review, name: CAB Review}
          - {id: done, name: Done}
    """))
    result = run(project, "--bpf-processes", "processes/change.yaml", "--bpf-max-examples",
                 "30")
    result.stdout.fnmatch_lines([
        "check_process did not reach all of process 'change':",
        "  - stage 'cab-review' was never entered in * examples: its branch from 'assess' "
        "`riks == 'high'`: `riks == 'high'` is never true: no stage collects `riks` (did you "
        "mean `risk`?)",
    ])
    assert result.ret == 1


def test_a_missing_folder_is_a_usage_error(project: pytest.Pytester) -> None:
    result = run(project, "--bpf-processes", "nowhere")
    result.stderr.fnmatch_lines(["*--bpf-processes nowhere: no such file or folder*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_the_engine_fixtures(project: pytest.Pytester) -> None:
    project.makepyfile(test_engines=textwrap.dedent("""
        import bpf

        def test_memory(bpf_engine):
            assert isinstance(bpf_engine, bpf.Engine)
            assert bpf_engine.store.url == "memory"

        def test_sqlite(bpf_sqlite_engine, tmp_path):
            assert bpf_sqlite_engine.store.url.startswith("sqlite:///")
            assert str(tmp_path) in bpf_sqlite_engine.store.url
    """))
    run(project).assert_outcomes(passed=2)


def test_the_plugin_costs_nothing_when_unused() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import bpf.testing.plugin; "
        "print(time.perf_counter() - t, 'hypothesis' in sys.modules)"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    seconds, hypothesis = out.stdout.split()
    assert hypothesis == "False"
    assert float(seconds) < 0.5, f"importing the plugin took {seconds}s"
    assert time.perf_counter() - started < 10


def test_the_plugin_loads_neither_the_engine_nor_its_libraries() -> None:
    # It is loaded in every pytest run of a project with bpf installed: the definitions and
    # the engine (jsonschema, yaml, transitions, SQLAlchemy) come in only when used.
    code = (
        "import sys; import bpf.testing.plugin; "
        "print(*sorted(m for m in ('bpf.runtime.engine', 'bpf.definition.loader', 'jsonschema', "
        "'sqlalchemy', 'transitions', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == []
