"""What the schema cannot say: identities, references, the stage graph, choices, Dynamics limits."""

from __future__ import annotations

import textwrap
import warnings

import pytest

import bpf

HEAD = """\
process: p
name: P
entity: opportunity
stages:
"""


def problems(stages: str) -> list[str]:
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(HEAD + textwrap.dedent(stages))
    return [str(p) for p in info.value.problems]


def load(stages: str) -> bpf.ProcessDefinition:
    return bpf.loads_process(HEAD + textwrap.dedent(stages))


def test_duplicate_stage_ids():
    assert problems("""\
        - {id: qualify, name: Qualify}
        - {id: develop, name: Develop}
        - {id: qualify, name: Qualify again}
        """) == [
        "<string>:7:8: duplicate stage id 'qualify': stage ids are unique within a process "
        "(first at line 5, column 8)"
    ]


def test_duplicate_fields_in_a_stage():
    assert problems("""\
        - id: qualify
          name: Qualify
          steps:
            - {field: budgetamount, label: Budget, type: money}
            - {field: description, label: Summary}
            - {field: budgetamount, label: Budget again, type: money}
        """) == [
        "<string>:10:15: duplicate step for field 'budgetamount' in stage 'qualify' (first at "
        "line 8, column 15)"
    ]


def test_the_same_field_in_two_stages_is_fine():
    definition = load("""\
        - id: qualify
          name: Qualify
          steps: [{field: description, label: Summary}]
        - id: close
          name: Close
          steps: [{field: description, label: Final summary, required: true}]
        """)
    assert definition.stage("close").step("description").required


def test_next_target_that_does_not_exist():
    assert problems("""\
        - id: qualify
          name: Qualify
          next:
            - stage: devlop
        - {id: develop, name: Develop}
        """) == [
        "<string>:8:14: stage 'devlop' does not exist (did you mean 'develop'?); stages: "
        "qualify, develop",
        "<string>:9:8: stage 'develop' is unreachable: no branch leads to it from the first "
        "stage 'qualify'",
    ]


def test_unreachable_stage_after_an_end():
    assert problems("""\
        - {id: qualify, name: Qualify, end: true}
        - {id: develop, name: Develop}
        """) == [
        "<string>:6:8: stage 'develop' is unreachable: no branch leads to it from the first stage "
        "'qualify'"
    ]


def test_branch_cycle():
    assert problems("""\
        - id: qualify
          name: Qualify
        - id: develop
          name: Develop
          next:
            - when: {field: budgetamount, is_set: false}
              stage: qualify
            - stage: close
        - {id: close, name: Close}
        """) == [
        "<string>:11:14: branch cycle: qualify → develop → qualify; a flow moves forward only "
        "(going back is the Previous Stage action)"
    ]


def test_a_stage_branching_to_itself_is_a_cycle():
    assert problems("""\
        - id: qualify
          name: Qualify
          next: [{when: {field: budgetamount, lt: 10}, stage: qualify}, {stage: close}]
        - {id: close, name: Close}
        """) == [
        "<string>:7:55: branch cycle: qualify → qualify; a flow moves forward only (going back is "
        "the Previous Stage action)"
    ]


def test_default_branch_must_come_last():
    assert problems("""\
        - id: qualify
          name: Qualify
          next:
            - stage: develop
            - when: {field: budgetamount, gt: 100000}
              stage: review
        - {id: review, name: Review}
        - {id: develop, name: Develop}
        """) == [
        "<string>:8:7: the default branch (without `when`) must come last: the branches after it "
        "would never be taken",
    ]


def test_next_needs_a_default_branch():
    assert problems("""\
        - id: qualify
          name: Qualify
          next:
            - when: {field: budgetamount, gt: 100000}
              stage: review
        - {id: review, name: Review}
        """) == [
        "<string>:7:3: the branches of stage 'qualify' need a default: end `next` with a branch "
        "without `when` (`- stage: ...`), so a flow always knows where to go"
    ]


def test_two_defaults():
    assert problems("""\
        - id: qualify
          name: Qualify
          next: [{stage: review}, {stage: close}]
        - {id: review, name: Review}
        - {id: close, name: Close}
        """) == [
        "<string>:7:10: the default branch (without `when`) must come last: the branches after "
        "it would never be taken"
    ]


BRANCHES = """\
- id: qualify
  name: Qualify
  steps:
    - {field: budgetamount, label: Budget, type: money}
  next:
    - when: {field: budgetamount, gt: 100000}
      stage: big
    - when: {field: budgetamount, gt: 10000}
      stage: medium
    - stage: small
"""


def test_peer_branches_that_merge_are_fine():
    definition = load(BRANCHES + """\
- {id: big, name: Big, next: [{stage: develop}]}
- {id: medium, name: Medium, next: [{stage: develop}]}
- {id: small, name: Small}
- {id: develop, name: Develop}
""")
    assert definition.successors("qualify") == ("big", "medium", "small")


def test_peer_branches_that_all_end_are_fine():
    definition = load(BRANCHES + """\
- {id: big, name: Big, end: true}
- {id: medium, name: Medium, end: true}
- {id: small, name: Small}
""")
    assert all(definition.is_last(s) for s in ("big", "medium", "small"))


def test_peer_branches_must_merge_or_all_end():
    assert problems(BRANCHES + """\
- {id: big, name: Big, next: [{stage: develop}]}
- {id: medium, name: Medium, end: true}
- {id: small, name: Small}
- {id: develop, name: Develop}
""") == [
        "<string>:9:3: the branches of stage 'qualify' must all merge into one stage or all end: "
        "'big' and 'small' meet at 'develop', but not every branch reaches a common stage"
    ]


def test_condition_on_a_choice_uses_its_choices():
    assert problems("""\
        - id: qualify
          name: Qualify
          next:
            - when: {field: purchaseprocess, equals: comittee}
              stage: review
            - when: {field: purchaseprocess, in: [individual, group]}
              stage: review
            - stage: develop
        - id: review
          name: Review
        - id: develop
          name: Develop
          steps:
            - {field: purchaseprocess, label: Purchase Process, type: choice,
               choices: [individual, committee, unknown]}
        """) == [
        "<string>:8:46: 'comittee' is not a choice of 'purchaseprocess': its choices are "
        "individual, committee, unknown",
        "<string>:10:55: 'group' is not a choice of 'purchaseprocess': its choices are "
        "individual, committee, unknown",
    ]


def test_condition_on_a_number_or_a_boolean_compares_with_its_type():
    assert problems("""\
        - id: qualify
          name: Qualify
          steps:
            - {field: budgetamount, label: Budget, type: money}
            - {field: decisionmaker, label: Decision Maker, type: boolean}
          next:
            - when: {field: budgetamount, gt: "100000"}
              stage: review
            - when: {field: decisionmaker, equals: "yes"}
              stage: review
            - stage: review
        - {id: review, name: Review}
        """) == [
        "<string>:11:39: 'budgetamount' is a money field: compare it with a number, not '100000'",
        "<string>:13:44: 'decisionmaker' is a boolean (mark complete) field: compare it with "
        "true or false, not 'yes'",
    ]


def test_condition_on_an_undeclared_field_is_a_warning():
    with pytest.warns(bpf.DefinitionWarning) as record:
        definition = load("""\
            - id: qualify
              name: Qualify
              next:
                - when: {field: estimatedvalue, gt: 100000}
                  stage: review
                - stage: review
            - {id: review, name: Review}
            """)
    assert definition.stage("qualify").next[0].when == bpf.Compare("estimatedvalue", "gt", 100000)
    assert [str(w.message) for w in record] == [
        "<string>:8:21: no step declares the field 'estimatedvalue': the condition reads it "
        "from the record as it is (check the spelling)"
    ]
    assert record[0].message.problem.line == 8
    assert record[0].filename == __file__


def test_category_must_be_among_the_categories():
    assert problems("""\
        - {id: qualify, name: Qualify, category: Qualfy}
        """) == [
        "<string>:5:42: category 'Qualfy' is not among the standard categories: Qualify, "
        "Develop, Propose, Close, Identify, Research, Resolve, Approval (did you mean 'Qualify'?)"
    ]


def test_own_categories_replace_the_standard_list():
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(textwrap.dedent("""\
            process: p
            name: P
            entity: incident
            categories: [Triage, Fix]
            stages:
              - {id: triage, name: Triage, category: Triage}
              - {id: fix, name: Fix, category: Qualify}
            """))
    assert [str(p) for p in info.value.problems] == [
        "<string>:7:36: category 'Qualify' is not among the process's `categories`: Triage, Fix"
    ]


def test_first_stage_runs_on_the_primary_entity():
    assert problems("""\
        - {id: qualify, name: Qualify, entity: lead}
        - {id: develop, name: Develop}
        """) == [
        "<string>:5:40: the first stage runs on the process's primary entity 'opportunity', not "
        "'lead': a flow starts on its primary record"
    ]


def _many(n: int, template: str) -> str:
    return "".join(template.format(i=i) for i in range(n))


def test_more_than_30_stages_is_a_dynamics_limit_warning():
    with pytest.warns(bpf.DefinitionWarning) as record:
        definition = load(_many(31, "- {{id: s{i}, name: Stage {i}}}\n"))
    assert len(definition.stages) == 31
    assert [str(w.message) for w in record] == [
        "<string>:4:1: 31 stages: Dynamics 365 allows at most 30 per process (bpf runs it anyway)"
    ]


def test_more_than_30_steps_is_a_dynamics_limit_warning():
    steps = _many(31, "    - {{field: f{i}, label: F{i}}}\n")
    with pytest.warns(bpf.DefinitionWarning) as record:
        definition = load("- id: big\n  name: Big\n  steps:\n" + steps)
    assert len(definition.stage("big").steps) == 31
    assert [str(w.message) for w in record] == [
        "<string>:7:3: 31 steps in stage 'big': Dynamics 365 allows at most 30 per stage (bpf "
        "runs it anyway)"
    ]


def test_more_than_5_entities_is_a_dynamics_limit_warning():
    stages = _many(6, "- {{id: s{i}, name: S{i}, entity: e{i}}}\n")
    stages = stages.replace("entity: e0", "entity: opportunity")
    with pytest.warns(bpf.DefinitionWarning) as record:
        definition = load(stages)
    assert len(definition.entities) == 6
    assert [str(w.message) for w in record] == [
        "<string>:10:30: entity 'e5' is the 6th of the process: Dynamics 365 allows at most 5 "
        "per process (bpf runs it anyway)"
    ]


def test_a_valid_process_loads_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load("- {id: qualify, name: Qualify}\n")
