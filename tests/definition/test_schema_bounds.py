"""Every number and text of a definition is bounded: what validates also runs.

A definition that validated but failed at run time was the audit's finding (issue 14): a stale
threshold of `.inf` broke every report, a version of 2**31 every start on PostgreSQL, a stage id
of 500,000 characters every index. Each bound is refused where it is written.
"""

from __future__ import annotations

import math
import textwrap

import pytest

import bpf
from bpf.definition.model import ProcessDefinition, Stage
from bpf.definition.schema import process_schema

PROCESS = """\
process: bounded
name: Bounded
entity: opportunity
{top}
stages:
  - id: {stage_id}
    name: Qualify
    {stage}
    steps:
      - {{field: risk, label: Risk, type: choice, choices: [low, high]}}
      - {{field: budget, label: Budget, type: money}}
    next:
      - when: {when}
        stage: close
      - stage: close
  - id: close
    name: Close
"""

HUGE = "1" + "0" * 400


def problems(*, top: str = "", stage: str = "", stage_id: str = "qualify",
             when: str = "{field: budget, gt: 10}") -> list[str]:
    text = PROCESS.format(top=top, stage=stage, stage_id=stage_id, when=when)
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(text)
    return [str(p) for p in info.value.problems]


def loads(**parts: str) -> bpf.ProcessDefinition:
    defaults = {"top": "", "stage": "", "stage_id": "qualify", "when": "{field: budget, gt: 10}"}
    return bpf.loads_process(PROCESS.format(**{**defaults, **parts}))


@pytest.mark.parametrize(("value", "message"), [
    (".inf", "`stale_after_days` must be a finite number, not .inf"),
    (".nan", "`stale_after_days` must be a finite number, not .nan"),
    ("-.inf", "`stale_after_days` must be a finite number, not -.inf"),
    ("1000000000", "`stale_after_days` must be at most 36500, not 1000000000"),
    (HUGE, "`stale_after_days` must be at most 36500, not a number of 401 digits"),
    ("0", "`stale_after_days` must be greater than 0, not 0"),
])
def test_stale_after_days_is_a_finite_number_of_days_up_to_a_century(value, message):
    assert problems(stage=f"stale_after_days: {value}") == [f"<string>:8:23: {message}"]


def test_a_century_is_the_longest_stale_threshold():
    assert loads(stage="stale_after_days: 36500").stages[0].stale_after_days == 36500


@pytest.mark.parametrize(("value", "message"), [
    ("2147483648", "`version` must be at most 2147483647, not 2147483648"),
    ("9223372036854775808", "`version` must be at most 2147483647, not 9223372036854775808"),
    (HUGE, "`version` must be at most 2147483647, not a number of 401 digits"),
    (".nan", "`version` must be a whole number, not the number .nan"),
    ("0", "`version` must be at least 1, not 0"),
])
def test_version_fits_a_32_bit_integer_column(value, message):
    assert problems(top=f"version: {value}") == [f"<string>:4:10: {message}"]


def test_the_largest_version_loads():
    assert loads(top="version: 2147483647").version == 2**31 - 1


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_probability_is_a_finite_percentage(value):
    assert problems(stage=f"probability: {value}") == [
        f"<string>:8:18: `probability` must be a finite number, not {value}"
    ]


def test_a_stage_id_is_at_most_100_characters():
    assert problems(stage_id="a" * 500_000) == [
        "<string>:6:9: `id` is 500,000 characters long: at most 100 are allowed"
    ]
    assert loads(stage_id="a" * 100).stages[0].id == "a" * 100


@pytest.mark.parametrize(("top", "position", "subject"), [
    ("process: " + "p" * 101, "1:1", None),  # replaced below: `process` is already set
    ("roles: [" + "r" * 101 + "]", "4:9", "item 1 of `roles`"),
    ("pipeline_field: " + "f" * 101, "4:17", "`pipeline_field`"),
    ("outcomes: {" + "o" * 101 + ": {}}", "4:12", "the key"),
])
def test_names_are_at_most_100_characters(top, position, subject):
    if subject is None:
        with pytest.raises(bpf.DefinitionError) as info:
            bpf.loads_process(PROCESS.replace("process: bounded", top).format(
                top="", stage="", stage_id="qualify", when="{field: budget, gt: 10}"))
        (problem,) = info.value.problems
        assert str(problem) == ("<string>:1:10: `process` is 101 characters long: at most 100 "
                                "are allowed")
        return
    (problem,) = problems(top=top)
    assert problem.startswith(f"<string>:{position}: ")
    assert "101 characters long: at most 100 are allowed" in problem


def test_a_stage_name_is_at_most_200_characters_and_the_message_does_not_quote_it_whole():
    text = PROCESS.replace("name: Qualify", "name: " + "Q" * 5000).format(
        top="", stage="", stage_id="qualify", when="{field: budget, gt: 10}")
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(text)
    (problem,) = info.value.problems
    assert str(problem) == "<string>:7:11: `name` is 5,000 characters long: at most 200 are allowed"


@pytest.mark.parametrize(("when", "message"), [
    ("{field: budget, gt: .nan}", "<string>:13:35: `gt` must be a finite number, not .nan"),
    ("{field: budget, equals: .inf}",
     "<string>:13:39: `equals` must be a finite number, not .inf"),
    ("{field: budget, in: [1, .nan]}",
     "<string>:13:39: item 2 of `in` must be a finite number, not .nan"),
])
def test_not_a_number_is_refused_wherever_a_number_is_allowed(when, message):
    assert problems(when=when) == [message]


def test_a_huge_number_in_a_condition_is_read_and_compared_not_overflowed():
    definition = loads(when=f"{{field: budget, gt: {HUGE}}}")
    assert definition.stages[0].next[0].when.evaluate({"budget": 1e300}.get) is False


def test_an_outcome_cannot_set_a_field_to_not_a_number():
    assert problems(top="outcomes: {won: {set: {statecode: .nan}}}") == [
        "<string>:4:35: `statecode` must be a finite number, not .nan"
    ]


@pytest.mark.parametrize(("choice", "message"), [
    ("2147483648", "item 1 of `choices` must be a whole number from -2147483648 to 2147483647 "
     "(a Dynamics option set value), not 2147483648"),
    ("x" * 201, "item 1 of `choices` is 201 characters long: at most 200 are allowed"),
])
def test_choices_are_bounded_like_a_dynamics_option_set(choice, message):
    text = textwrap.dedent(f"""\
        process: bounded
        name: Bounded
        entity: opportunity
        stages:
          - id: qualify
            name: Qualify
            steps:
              - {{field: risk, label: Risk, type: choice, choices: [{choice}]}}
        """)
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(text)
    assert [p.message for p in info.value.problems] == [message]


def test_json_schema_alone_lets_not_a_number_through():
    # Why bpf checks finiteness itself: every comparison with NaN is false, so NaN passes
    # minimum and maximum. If jsonschema ever refuses it, the walk in schema_problems can go.
    import jsonschema

    stage = process_schema()["$defs"]["stage"]["properties"]["probability"]
    jsonschema.validate(math.nan, stage)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(math.inf, stage)


@pytest.mark.parametrize("fields", [
    {"probability": math.nan}, {"probability": 101}, {"stale_after_days": math.inf},
    {"stale_after_days": 0}, {"stale_after_days": 36_501},
])
def test_a_stage_built_in_code_is_bounded_too(fields):
    with pytest.raises(ValueError, match="must be a finite number"):
        Stage(id="a", name="A", entity="opportunity", phase="A", **fields)


@pytest.mark.parametrize("version", [0, 2**31, 1.5, True])
def test_a_process_built_in_code_has_a_32_bit_version(version):
    stage = Stage(id="a", name="A", entity="opportunity", phase="A")
    with pytest.raises(ValueError, match="version must be a whole number"):
        ProcessDefinition("p", "P", "opportunity", [stage], version=version)
