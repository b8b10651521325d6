"""Schema violations, worded for the YAML author and located at the key or value at fault."""

from __future__ import annotations

import json
import textwrap
from importlib import resources

import jsonschema
import pytest

import bpf
from bpf.definition.schema import process_schema


def problems(text: str) -> list[str]:
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(textwrap.dedent(text))
    return [str(p) for p in info.value.problems]


def test_the_schema_ships_in_the_package_and_is_a_valid_json_schema():
    text = resources.files("bpf.definition").joinpath("process.schema.json").read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert process_schema() == schema


def test_unknown_key_names_the_allowed_keys_and_a_likely_fix():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages:
          - id: one
            name: One
            guidence: Call the customer.
        """) == [
        "<string>:7:5: unknown key `guidence` in stage (did you mean `guidance`?); allowed keys: "
        "id, name, category, phase, entity, probability, forecast_category, guidance, "
        "stale_after_days, steps, next, end, on_enter, on_exit, after_enter, after_exit"
    ]


def test_unknown_top_level_key():
    assert problems("""\
        process: p
        name: P
        entity: account
        stage:
          - id: one
            name: One
        """) == [
        "<string>:1:1: a process is missing `stages` (required keys: process, name, entity, "
        "stages)",
        "<string>:4:1: unknown key `stage` in process (did you mean `stages`?); allowed keys: "
        "process, name, version, entity, description, pipeline_field, roles, categories, stages, "
        "outcomes, reactivate, extends",
    ]


def test_missing_keys_say_what_is_required():
    assert problems("""\
        process: p
        stages:
          - name: One
            steps:
              - field: x
        """) == [
        "<string>:1:1: a process is missing `entity` (required keys: process, name, entity, "
        "stages)",
        "<string>:1:1: a process is missing `name` (required keys: process, name, entity, stages)",
        "<string>:3:5: a stage is missing `id` (required keys: id, name)",
        "<string>:5:9: a step is missing `label` (required keys: field, label)",
    ]


def test_wrong_types_say_what_was_expected_and_what_was_found():
    assert problems("""\
        process: p
        name: P
        entity: account
        version: one
        roles: salesperson
        stages:
          - id: one
            name: One
            end: maybe
            steps:
              - {field: x, label: 42, required: 1}
        """) == [
        "<string>:4:10: `version` must be a whole number, not the text 'one'",
        "<string>:5:8: `roles` must be a list, not the text 'salesperson'",
        "<string>:9:10: `end` must be true or false, not the text 'maybe'",
        "<string>:11:27: `label` must be text, not the number 42 (quote it to keep it as text)",
        "<string>:11:41: `required` must be true or false, not the number 1",
    ]


def test_yes_and_no_are_booleans_to_yaml():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages:
          - id: one
            name: One
            steps:
              - {field: answer, label: Answer, type: choice, choices: [yes, no, maybe]}
        """) == [
        "<string>:8:64: item 1 of `choices` must be text or a whole number, not true "
        "(quote it to keep it as text)",
        "<string>:8:69: item 2 of `choices` must be text or a whole number, not false "
        "(quote it to keep it as text)",
    ]


def test_enum_violation_lists_the_allowed_values():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages:
          - id: one
            name: One
            steps:
              - {field: amount, label: Amount, type: currency}
        """) == [
        "<string>:8:46: `type` must be one of text, number, money, date, boolean, choice, lookup; "
        "not 'currency'"
    ]


def test_enum_violation_suggests_the_close_value():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages:
          - {id: one, name: One, forecast_category: bestcase}
        """) == [
        "<string>:5:45: `forecast_category` must be one of pipeline, best_case, committed, "
        "omitted, won, lost; not 'bestcase' (did you mean `best_case`?)"
    ]


def test_names_and_ids_follow_their_patterns():
    assert problems("""\
        process: Opportunity Sales
        name: P
        entity: 1account
        roles: [Sales Manager]
        stages:
          - id: Qualify
            name: Qualify
            on_enter: [notify team]
            steps:
              - {field: parent-contact, label: Contact}
        """) == [
        "<string>:1:10: `process` 'Opportunity Sales' is not a valid process name: use lowercase "
        "letters, digits and single '-' between them (e.g. opportunity-sales)",
        "<string>:3:9: `entity` '1account' is not a valid entity name: use letters, digits and "
        "'_', not starting with a digit (e.g. opportunity)",
        "<string>:4:9: item 1 of `roles` 'Sales Manager' is not a valid role name: use lowercase "
        "letters, digits and single '-' or '_' between them (e.g. sales-manager)",
        "<string>:6:9: `id` 'Qualify' is not a valid stage id: use lowercase letters, digits and "
        "single '-' or '_' between them (e.g. executive-review)",
        "<string>:8:16: item 1 of `on_enter` 'notify team' is not a valid action name: use "
        "letters, digits, '_', '-', '.' or ':' (e.g. notify-team)",
        "<string>:10:17: `field` 'parent-contact' is not a valid field name: use letters, digits "
        "and '_', not starting with a digit (e.g. parentcontactid)",
    ]


def test_numbers_out_of_range():
    assert problems("""\
        process: p
        name: P
        entity: account
        version: 0
        stages:
          - {id: one, name: One, probability: 120, stale_after_days: 0}
        """) == [
        "<string>:4:10: `version` must be at least 1, not 0",
        "<string>:6:39: `probability` must be at most 100, not 120",
        "<string>:6:62: `stale_after_days` must be greater than 0, not 0",
    ]


def test_empty_lists_and_blank_text():
    assert problems("""\
        process: p
        name: "  "
        entity: account
        stages: []
        """) == [
        "<string>:2:7: `name` must not be empty",
        "<string>:4:9: `stages` must not be empty",
    ]


def test_duplicates_in_a_list_are_located_at_the_repeat():
    assert problems("""\
        process: p
        name: P
        entity: account
        roles:
          - salesperson
          - sales-manager
          - salesperson
        stages:
          - {id: one, name: One}
        """) == ["<string>:7:5: `roles` lists 'salesperson' more than once"]


def test_choices_are_required_for_and_only_allowed_with_type_choice():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages:
          - id: one
            name: One
            steps:
              - {field: size, label: Size, type: choice}
              - {field: colour, label: Colour, choices: [red, green]}
        """) == [
        "<string>:8:9: a step of type choice needs `choices`: the list of values it accepts",
        "<string>:9:40: `choices` is only allowed on a step of `type: choice`",
    ]


def test_end_cannot_be_combined_with_next():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages:
          - id: one
            name: One
            end: true
            next:
              - stage: two
          - {id: two, name: Two}
        """) == [
        "<string>:8:5: a stage with `end: true` has no `next`: remove one of them",
    ]


def test_outcome_names_and_keys():
    assert problems("""\
        process: p
        name: P
        entity: account
        stages:
          - {id: one, name: One}
        outcomes:
          Won: {set: {statecode: won}}
          lost: {sets: {statecode: lost}}
        """) == [
        "<string>:7:3: the key 'Won' is not a valid outcome name: use lowercase letters, digits "
        "and single '-' or '_' between them (e.g. won)",
        "<string>:8:10: unknown key `sets` in outcome (did you mean `set`?); allowed keys: set",
    ]


BRANCHING = """\
process: p
name: P
entity: account
stages:
  - id: one
    name: One
    steps:
      - {{field: budget, label: Budget, type: money}}
    next:
      - when: {when}
        stage: two
      - stage: two
  - {{id: two, name: Two}}
"""


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("{field: budget}", "the condition on `budget` needs one operator: equals, not_equals, "
                            "in, not_in, gt, gte, lt, lte, is_set"),
        ("{field: budget, gt: 1, lt: 9}", "one operator per comparison, found gt, lt: combine "
                                          "comparisons with `all: [...]`"),
        ("{gt: 1}", "`gt` needs a `field` to compare"),
        ("{}", "an empty condition: write {field: F, OP: V}, {all: [...]}, {any: [...]} or "
               "{not: ...}"),
        ("{all: [{field: budget, gt: 1}], not: {field: budget, lt: 0}}",
         "`all` must be the only key of its condition, found also `not`: nest the other "
         "conditions inside it"),
    ],
)
def test_condition_shapes(when, message):
    assert problems(BRANCHING.format(when=when)) == [f"<string>:10:15: {message}"]


def test_condition_operator_values():
    assert problems(BRANCHING.format(
        when="{any: [{field: budget, in: 5}, {field: budget, equals: [1, 2]}, "
             "{field: budget, is_set: maybe}, {field: budget, gtt: 3}]}"
    )) == [
        "<string>:10:42: `in` must be a list, not the number 5",
        "<string>:10:70: compare with a single value (use `in`/`not_in` for a list of values)",
        "<string>:10:103: `is_set` must be true or false, not the text 'maybe'",
        "<string>:10:127: unknown key `gtt` in condition (did you mean `gt`?); allowed keys: "
        "field, equals, not_equals, in, not_in, gt, gte, lt, lte, is_set, all, any, not",
    ]


def test_every_problem_of_a_file_is_reported_at_once():
    found = problems("""\
        process: Bad
        name: P
        entity: account
        stages:
          - id: one
            name: One
            category: Qualfy
            next:
              - stage: nowhere
          - id: one
            nme: Again
        """)
    assert found == [
        "<string>:1:10: `process` 'Bad' is not a valid process name: use lowercase letters, "
        "digits and single '-' between them (e.g. opportunity-sales)",
        "<string>:7:15: category 'Qualfy' is not among the standard categories: Qualify, "
        "Develop, Propose, Close, Identify, Research, Resolve, Approval (did you mean "
        "'Qualify'?)",
        "<string>:9:16: stage 'nowhere' does not exist; stages: one",
        "<string>:10:5: a stage is missing `name` (required keys: id, name)",
        "<string>:10:9: duplicate stage id 'one': stage ids are unique within a process (first "
        "at line 5, column 9)",
        "<string>:11:5: unknown key `nme` in stage (did you mean `name`?); allowed keys: id, "
        "name, category, phase, entity, probability, forecast_category, guidance, "
        "stale_after_days, steps, next, end, on_enter, on_exit, after_enter, after_exit",
    ]


def test_problem_str_and_fields():
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process("process: p\nname: P\nentity: account\nstages: {}\n", "mine.yaml")
    (problem,) = info.value.problems
    assert problem == bpf.Problem("mine.yaml", 4, 9, "`stages` must be a list, not a mapping")
    assert str(info.value) == "mine.yaml:4:9: `stages` must be a list, not a mapping"
