"""Customizing a process without copying it: ``extends`` plus overrides and stage patches."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import bpf

EXAMPLES = Path(__file__).parents[2] / "processes" / "examples"


def extend(text: str) -> bpf.ProcessDefinition:
    return bpf.loads_process(textwrap.dedent(text))


def problems(text: str) -> list[str]:
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(textwrap.dedent(text))
    return [str(p) for p in info.value.problems]


def required(definition: bpf.ProcessDefinition, stage: str) -> list[str]:
    return [s.field for s in definition.stage(stage).required_steps]


def test_gated_example_requires_the_gating_steps():
    gated = bpf.load_process(EXAMPLES / "opportunity-gated.yaml")
    assert gated.process == "opportunity-gated"
    assert gated.extends == "opportunity-sales"
    assert [s.id for s in gated.stages] == [
        "qualify", "develop", "executive-review", "propose", "close"
    ]
    assert required(gated, "qualify") == [
        "parentcontactid", "parentaccountid", "budgetamount", "purchaseprocess"
    ]
    assert required(gated, "develop") == ["customerneed", "proposedsolution"]
    assert required(gated, "propose") == ["identifypursuitteam", "presentproposal"]
    assert required(gated, "close") == ["presentfinalproposal", "finaldecisiondate"]
    assert [gated.stage(s).probability for s in ("qualify", "develop", "propose", "close")] == [
        20, 40, 70, 90
    ]


def test_gated_example_sends_big_deals_through_executive_review():
    gated = bpf.load_process(EXAMPLES / "opportunity-gated.yaml")
    big, default = gated.branches("develop")
    assert big == bpf.Branch("executive-review", bpf.Compare("budgetamount", "gt", 100000))
    assert default == bpf.Branch("propose")
    assert gated.successors("executive-review") == ("propose",)
    review = gated.stage("executive-review")
    assert (review.phase, review.on_enter) == ("2-Develop", ("notify-sales-executives",))


def test_what_is_not_overridden_is_inherited():
    base = bpf.standard_process("opportunity-sales")
    gated = bpf.load_process(EXAMPLES / "opportunity-gated.yaml")
    assert (gated.entity, gated.version, gated.roles, gated.pipeline_field) == (
        base.entity, base.version, base.roles, base.pipeline_field
    )
    assert gated.outcomes == base.outcomes
    assert gated.stage("qualify").guidance == base.stage("qualify").guidance
    assert gated.stage("qualify").step("purchasetimeframe") == base.stage("qualify").step(
        "purchasetimeframe"
    )


def test_top_level_keys_replace_the_base_ones():
    mine = extend("""\
        extends: opportunity-sales
        process: my-sales
        name: My Sales
        version: 3
        roles: [account-manager]
        pipeline_field: salesstage
        outcomes:
          won: {set: {statecode: won}}
        """)
    assert (mine.name, mine.version, mine.roles, mine.pipeline_field) == (
        "My Sales", 3, ("account-manager",), "salesstage"
    )
    assert list(mine.outcomes) == ["won"]


def test_stage_keys_replace_the_base_stage_ones():
    mine = extend("""\
        extends: opportunity-sales
        process: my-sales
        stages:
          - id: qualify
            name: Qualification
            guidance: Call within a day.
            on_enter: [assign-owner]
        """)
    qualify = mine.stage("qualify")
    assert (qualify.name, qualify.guidance, qualify.on_enter) == (
        "Qualification", "Call within a day.", ("assign-owner",)
    )
    assert qualify.phase == "1-Qualify"  # the phase follows the category, not the name


def test_steps_patch_removes_changes_requires_and_adds():
    mine = extend("""\
        extends: opportunity-sales
        process: my-sales
        stages:
          - id: qualify
            steps:
              remove: [description, decisionmaker]
              change:
                budgetamount: {label: Budget (EUR)}
                purchaseprocess: {type: text}
              require: [budgetamount, parentaccountid]
              add:
                - {field: industrycode, label: Industry, type: choice, choices: [retail, bank]}
        """)
    qualify = mine.stage("qualify")
    assert [s.field for s in qualify.steps] == [
        "parentcontactid", "parentaccountid", "purchasetimeframe", "budgetamount",
        "purchaseprocess", "industrycode",
    ]
    budget = qualify.step("budgetamount")
    assert (budget.label, budget.type, budget.required) == ("Budget (EUR)", "money", True)
    # A step that is no longer a choice loses its choices.
    assert qualify.step("purchaseprocess").choices == ()
    assert qualify.step("industrycode").choices == ("retail", "bank")


def test_a_list_of_steps_replaces_them_all():
    mine = extend("""\
        extends: opportunity-sales
        process: my-sales
        stages:
          - id: close
            steps:
              - {field: finaldecisiondate, label: Decision Date, type: date, required: true}
        """)
    assert mine.stage("close").steps == (
        bpf.Step("finaldecisiondate", "Decision Date", "date", required=True),
    )


def test_insert_before_and_remove_a_stage():
    mine = extend("""\
        extends: opportunity-sales
        process: my-sales
        stages:
          - id: discovery
            insert_before: qualify
            name: Discovery
            category: Qualify
          - id: propose
            remove: true
        """)
    assert [s.id for s in mine.stages] == ["discovery", "qualify", "develop", "close"]
    assert mine.successors("develop") == ("close",)


def test_next_replaces_end_and_end_replaces_next(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(textwrap.dedent("""\
        process: base
        name: Base
        entity: account
        stages:
          - id: one
            name: One
            next: [{when: {field: big, equals: true}, stage: two}, {stage: three}]
          - {id: two, name: Two, end: true}
          - {id: three, name: Three}
        """))
    mine = tmp_path / "mine.yaml"
    mine.write_text(textwrap.dedent("""\
        extends: ./base.yaml
        process: mine
        stages:
          - {id: one, end: true}
          - {id: two, next: [{stage: three}]}
        """))
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(mine)
    # `one` now ends, so two and three are unreachable: proof that `next` was dropped; and
    # `two` goes on to three: proof that `end` was dropped.
    assert [str(p) for p in info.value.problems] == [
        f"{mine}:1:10: stage 'three' is unreachable: no branch leads to it from the first stage "
        "'one' (inherited from base)",
        f"{mine}:5:10: stage 'two' is unreachable: no branch leads to it from the first stage "
        "'one'",
    ]


def test_extends_a_path_relative_to_the_extending_file(tmp_path):
    (tmp_path / "bases").mkdir()
    base = tmp_path / "bases" / "team.yaml"
    base.write_text("extends: opportunity-sales\nprocess: team-sales\nroles: [team]\n")
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: bases/team.yaml\nprocess: my-sales\nname: Mine\n")
    definition = bpf.load_process(mine)
    assert (definition.process, definition.name, definition.roles, definition.extends) == (
        "my-sales", "Mine", ("team",), "bases/team.yaml"
    )
    assert definition.source == str(mine)


def test_unknown_shipped_process():
    assert problems("""\
        extends: opportunity-sale
        process: mine
        """) == [
        "<string>:1:10: unknown process 'opportunity-sale' to extend (did you mean "
        "'opportunity-sales'?): shipped processes are lead-to-opportunity, opportunity-sales, "
        "phone-to-case; a file path needs a '/' or a .yaml suffix"
    ]


def test_missing_base_file(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("process: mine\nextends: ./nowhere.yaml\n")
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(mine)
    assert [str(p) for p in info.value.problems] == [
        f"{mine}:2:10: cannot extend './nowhere.yaml': cannot read the file: No such file or "
        "directory"
    ]


def test_base_with_problems_reports_them_with_their_own_locations(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("process: base\nname: Base\nentity: account\nstages: []\n")
    mine = tmp_path / "mine.yaml"
    mine.write_text("process: mine\nextends: base.yaml\n")
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(mine)
    assert sorted(str(p) for p in info.value.problems) == sorted([
        f"{base}:4:9: `stages` must not be empty",
        f"{mine}:2:10: cannot extend 'base.yaml': it has 1 problem(s), listed with their own "
        "locations",
    ])


def test_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("process: a\nextends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("process: b\nextends: a.yaml\n")
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(tmp_path / "a.yaml")
    messages = [str(p) for p in info.value.problems]
    assert messages == [
        f"{tmp_path / 'a.yaml'}:2:10: cannot extend 'b.yaml': it has 1 problem(s), listed with "
        "their own locations",
        f"{tmp_path / 'b.yaml'}:2:10: `extends` goes round in a circle: 'a.yaml' extends this "
        "file, directly or through other files",
    ]


def test_patch_problems_are_located_in_the_extending_file():
    assert problems("""\
        extends: opportunity-sales
        process: mine
        stages:
          - id: qualfy
            probability: 5
          - id: review
            insert_after: devlop
            name: Review
          - id: develop
            steps:
              require: [budget]
              remove: [customerneed, customerneed2]
              change:
                nothing: {label: X}
        """) == [
        "<string>:4:9: opportunity-sales has no stage 'qualfy'; to add a stage, give "
        "`insert_after` or `insert_before` (its stages: qualify, develop, propose, close)",
        "<string>:7:19: opportunity-sales has no stage 'devlop' (its stages: qualify, develop, "
        "propose, close)",
        "<string>:11:17: stage 'develop' has no step for field 'budget' to require (its steps: "
        "proposedsolution, identifycustomercontacts, identifycompetitors)",
        "<string>:12:30: stage 'develop' has no step for field 'customerneed2' to remove (its "
        "steps: proposedsolution, identifycustomercontacts, identifycompetitors)",
        "<string>:14:9: stage 'develop' has no step for field 'nothing' to change (its steps: "
        "proposedsolution, identifycustomercontacts, identifycompetitors)",
    ]


def test_patch_schema_problems():
    assert problems("""\
        extends: opportunity-sales
        process: mine
        stages:
          - id: review
            insert_after: qualify
            insert_before: develop
          - id: develop
            remove: true
            name: Gone
          - id: propose
            steps: [{field: x, label: X}]
            probabilty: 50
          - id: close
            steps: {requires: [filedebrief]}
        """) == [
        "<string>:4:5: an inserted stage is a complete stage: it needs `name`",
        "<string>:6:5: give `insert_after` or `insert_before`, not both",
        "<string>:7:5: a removed stage takes no other keys than `id` and `remove: true`",
        "<string>:12:5: unknown key `probabilty` in stage patch (did you mean `probability`?); "
        "allowed keys: id, name, category, phase, entity, probability, forecast_category, "
        "guidance, stale_after_days, steps, next, end, on_enter, on_exit, after_enter, "
        "after_exit, insert_after, insert_before, remove",
        "<string>:14:13: unknown key `requires` in steps patch (did you mean `require`?); allowed "
        "keys: require, remove, add, change",
    ]


def test_extending_file_needs_its_own_process_name():
    assert problems("extends: opportunity-sales\nname: Mine\n") == [
        "<string>:1:1: an extending process is missing `process` (required keys: extends, "
        "process)"
    ]


def test_a_change_that_breaks_a_step_is_located_at_the_change():
    assert problems("""\
        extends: opportunity-sales
        process: mine
        stages:
          - id: qualify
            steps:
              change:
                budgetamount: {type: choice}
        """) == [
        "<string>:7:23: a step of type choice needs `choices`: the list of values it accepts"
    ]


def test_problems_in_inherited_stages_point_at_extends(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(textwrap.dedent("""\
        process: base
        name: Base
        entity: account
        stages:
          - id: one
            name: One
            next:
              - {when: {field: big, equals: true}, stage: review}
              - {stage: two}
          - {id: review, name: Review}
          - {id: two, name: Two}
        """))
    mine = tmp_path / "mine.yaml"
    mine.write_text("process: mine\nextends: ./base.yaml\nstages:\n"
                    "  - {id: review, remove: true}\n")
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(mine)
    assert [str(p) for p in info.value.problems] == [
        f"{mine}:2:10: stage 'review' does not exist; stages: one, two (inherited from base)"
    ]
