"""Synthetic exports: the legacy layout, option sets, every condition operator, every loss."""

from __future__ import annotations

import zipfile

import pytest
from dynamics import xamlkit as k

import bpf
from bpf.interop.dynamics import convert

T = "new_thing"
A, B, C, D = (k.new_id() for _ in range(4))


def two_way(tmp_path, condition, *, options=None, kind_class=k.OPTION_SET):
    """Stage A branches to B when ``condition`` holds, else to C; both end at D."""
    xaml = k.workflow(
        k.entity(T, k.stage(A, "Start", k.step("new_status", "Status", class_id=kind_class),
                            k.step("new_amount", "Amount", class_id=k.MONEY),
                            k.conditions(A, [(condition, B)], C), category=0, next_id=D)),
        k.entity(T, k.stage(B, "Yes", next_id=D)),
        k.entity(T, k.stage(C, "No", next_id=D)),
        k.entity(T, k.stage(D, "End", category=3)),
    )
    path = k.write_flow(tmp_path, xaml, k.row("new_twoway", "new_Thing", "Two Way"))
    if options:
        folder = tmp_path / "Entities" / "new_Thing"
        folder.mkdir(parents=True)
        (folder / "Entity.xml").write_text(k.option_set_entity(T, "new_status", options))
    (conversion,) = convert(path)
    return conversion


def comments(yaml):
    """The comments of a YAML text, as one line of words."""
    return " ".join(line.strip().removeprefix("#").strip() for line in yaml.splitlines()
                    if line.strip().startswith("#"))


def walk(definition, record):
    engine = bpf.Engine()
    engine.register(definition)
    flow = engine.start(definition.process, {"id": "r-1", **record})
    flow.next()
    return flow.stage.id


# -- the process row, the two layouts ------------------------------------------------------------


def test_the_process_row_names_the_process_and_its_primary_table(tmp_path):
    conversion = two_way(tmp_path, k.compare("new_status", "Equal", 1))
    assert conversion.process == "new_twoway"
    assert conversion.filename == "new_twoway.yaml"
    assert conversion.definition.process == "new-twoway"
    assert (conversion.definition.name, conversion.definition.entity) == ("Two Way", T)
    assert [s.name for s in conversion.definition.stages] == ["Start", "Yes", "No", "End"]
    assert [s.phase for s in conversion.definition.stages] == ["1-Qualify", "Yes", "No",
                                                                "4-Close"]


def test_without_a_process_row_the_name_comes_from_the_file_name(tmp_path):
    xaml = k.workflow(k.entity(T, k.stage(A, "Only", k.step("new_name", "Name"), next_id=None)))
    path = k.write_flow(tmp_path, xaml, name=f"Quick Review-{A.upper()}.xaml")
    (conversion,) = convert(path)
    assert conversion.process == "quick_review"
    assert conversion.definition.name == "Quick Review"
    assert "No process row" in conversion.yaml


def test_the_legacy_layout_follows_document_order_and_reports_its_hops(tmp_path):
    stages_lead = [k.stage(k.new_id(), name, k.step("subject", "Topic", required=True),
                           category=0, next_id=k.legacy()) for name in ("Qualify",)]
    opp = [k.stage(k.new_id(), name, k.step(field, label), category=c, next_id=k.legacy())
           for name, field, label, c in (("Develop", "customerneed", "Customer Need", 1),
                                         ("Propose", "proposedsolution", "Solution", 2),
                                         ("Close", "finaldecisiondate", "Decision", 3))]
    xaml = k.workflow(k.entity("lead", *stages_lead, relationship="opportunity_originating_lead",
                               attribute="originatingleadid"),
                      k.entity("opportunity", *opp),
                      flow_id="00000000-0000-0000-0000-000000000000")
    path = k.write_flow(tmp_path, xaml, k.row("leadtoopportunitysalesprocess", "Lead", "L2O"))
    (conversion,) = convert(path)
    definition = conversion.definition
    assert [(s.name, s.entity, s.phase) for s in definition.stages] == [
        ("Qualify", "lead", "1-Qualify"), ("Develop", "opportunity", "2-Develop"),
        ("Propose", "opportunity", "3-Propose"), ("Close", "opportunity", "4-Close")]
    assert [definition.successors(s.id) for s in definition.stages] == [
        ("develop",), ("propose",), ("close",), ()]
    assert any("'opportunity_originating_lead'" in loss for loss in conversion.losses)
    assert "legacy layout" in conversion.yaml


def test_a_stage_without_next_stage_in_the_current_layout_ends_its_branch(tmp_path):
    xaml = k.workflow(
        k.entity(T, k.stage(A, "Start", k.conditions(
            A, [(k.compare("new_flag", "Equal", 1, kind="Boolean"), B)], C), next_id=None)),
        k.entity(T, k.stage(B, "Approved", next_id=None)),
        k.entity(T, k.stage(C, "Rejected", next_id=None)),
    )
    (conversion,) = convert(k.write_flow(tmp_path, xaml))
    definition = conversion.definition
    assert definition.stage("approved").end
    assert definition.is_last("approved") and definition.is_last("rejected")
    assert walk(definition, {"new_flag": True}) == "approved"
    assert walk(definition, {"new_flag": False}) == "rejected"


# -- option sets -----------------------------------------------------------------------------------


def test_option_set_values_become_their_labels_when_the_solution_has_them(tmp_path):
    conversion = two_way(tmp_path, k.compare("new_status", "Equal", 2),
                         options={1: "Draft", 2: "Approved", 3: "Rejected"})
    step = conversion.definition.stage("start").step("new_status")
    assert (step.type, step.choices) == ("choice", ("Draft", "Approved", "Rejected"))
    assert "when: {field: new_status, equals: Approved}" in conversion.yaml
    assert walk(conversion.definition, {"new_status": "Approved"}) == "yes"
    assert walk(conversion.definition, {"new_status": "Draft"}) == "no"
    assert not any("option sets" in loss for loss in conversion.losses)


def test_global_option_sets_are_found_through_the_column(tmp_path):
    xaml = k.workflow(k.entity(T, k.stage(A, "Only", k.step("new_kind", "Kind",
                                                               class_id=k.OPTION_SET))))
    path = k.write_flow(tmp_path, xaml, k.row("new_kinds", "new_thing", "Kinds"))
    (tmp_path / "Entities" / "new_thing").mkdir(parents=True)
    (tmp_path / "Entities" / "new_thing" / "Entity.xml").write_text(
        k.option_set_entity(T, "new_kind", {}, global_name="new_packagetype"))
    (tmp_path / "OptionSets").mkdir()
    (tmp_path / "OptionSets" / "new_packagetype.xml").write_text(
        k.global_option_set("new_packagetype", {123000000: "Training", 123000001: "Travel"}))
    (conversion,) = convert(path)
    assert conversion.definition.stage("only").step("new_kind").choices == ("Training",
                                                                             "Travel")


def test_without_labels_option_set_values_stay_whole_numbers(tmp_path):
    conversion = two_way(tmp_path, k.compare("new_status", "Equal", 397830003, 397830009))
    step = conversion.definition.stage("start").step("new_status")
    assert (step.type, step.choices) == ("choice", (397830003, 397830009))
    assert walk(conversion.definition, {"new_status": 397830009}) == "yes"
    assert any("new_status are not in the solution" in loss for loss in conversion.losses)


def test_a_solution_zip_carries_its_option_sets_in_customizations_xml(tmp_path):
    xaml = k.workflow(k.entity(T, k.stage(A, "Only", k.step("new_kind", "Kind",
                                                               class_id=k.OPTION_SET))))
    customizations = (
        '<?xml version="1.0" encoding="utf-8"?><ImportExportXml><Entities><Entity>'
        + k.option_set_entity(T, "new_kind", {1: "Small", 2: "Large"}).split("?>", 1)[1]
        .replace("<Entity>", "").replace("</Entity>", "")
        + "</Entity></Entities><Workflows>"
        + k.row("new_zipped", "new_thing", "Zipped").split("?>", 1)[1]
        + "</Workflows></ImportExportXml>")
    archive = tmp_path / "solution.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Workflows/Flow.xaml", xaml)
        z.writestr("customizations.xml", customizations)
        z.writestr("solution.xml", "<ImportExportXml />")
    (conversion,) = convert(archive)
    assert conversion.process == "new_zipped"
    assert conversion.definition.stage("only").step("new_kind").choices == ("Small", "Large")
    assert conversion.source == f"{archive}!Workflows/Flow.xaml"


# -- condition operators ---------------------------------------------------------------------------


@pytest.mark.parametrize(("condition", "yaml", "yes", "no"), [
    (k.compare("new_status", "Equal", 1), "{field: new_status, equals: 1}",
     {"new_status": 1}, {"new_status": 2}),
    (k.compare("new_status", "NotEqual", 1), "{field: new_status, not_equals: 1}",
     {"new_status": 2}, {"new_status": 1}),
    (k.compare("new_status", "Equal", 1, 2), "{field: new_status, in: [1, 2]}",
     {"new_status": 2}, {"new_status": 3}),
    (k.compare("new_status", "NotEqual", 1, 2), "{field: new_status, not_in: [1, 2]}",
     {"new_status": 3}, {"new_status": 1}),
    (k.both(k.compare("new_status", "Equal", 1),
            k.compare("new_amount", "GreaterThan", 1000, kind="Money")),
     "{all: [{field: new_status, equals: 1}, {field: new_amount, gt: 1000}]}",
     {"new_status": 1, "new_amount": 5000}, {"new_status": 1, "new_amount": 10}),
    (k.either(k.compare("new_status", "Equal", 1), k.compare("new_status", "Equal", 2)),
     "{any: [{field: new_status, equals: 1}, {field: new_status, equals: 2}]}",
     {"new_status": 2}, {"new_status": 3}),
    (k.both(k.both(k.compare("new_status", "Equal", 1), k.compare("new_status", "NotNull")),
            k.compare("new_amount", "LessEqual", 10, kind="Integer")),
     "{all: [{field: new_status, equals: 1}, {field: new_status, is_set: true}, "
     "{field: new_amount, lte: 10}]}",
     {"new_status": 1, "new_amount": 10}, {"new_status": 1, "new_amount": 11}),
    (k.compare("new_amount", "Null"), "{field: new_amount, is_set: false}",
     {}, {"new_amount": 3}),
], ids=["Equal", "NotEqual", "in", "not in", "And", "Or", "nested And", "Null"])
def test_each_condition_operator_converts_and_decides_the_branch(tmp_path, condition, yaml,
                                                                 yes, no):
    conversion = two_way(tmp_path, condition)
    assert f"when: {yaml}" in conversion.yaml
    assert walk(conversion.definition, yes) == "yes"
    assert walk(conversion.definition, no) == "no"


def test_two_options_compare_with_true_and_false(tmp_path):
    conversion = two_way(tmp_path, k.compare("new_status", "Equal", 1, kind="Boolean"),
                         kind_class=k.TWO_OPTIONS)
    assert "when: {field: new_status, equals: true}" in conversion.yaml
    assert conversion.definition.stage("start").step("new_status").type == "boolean"


# -- losses ----------------------------------------------------------------------------------------


def one_stage(tmp_path, *activities, labels=None):
    xaml = k.workflow(k.entity(T, k.stage(A, "Only", *activities, labels=labels)))
    (conversion,) = convert(k.write_flow(tmp_path, xaml, k.row("new_lossy", T, "Lossy")))
    return conversion


@pytest.mark.parametrize(("activity", "loss"), [
    (k.action_step("Approve", "new_approve", required=True),
     "step 'Approve' is a button that runs the action or workflow 'new_approve' (a required "
     "step): not converted"),
    (k.flow_step("Notify"), "step 'Notify' runs the Power Automate flow"),
    (k.stage_trigger("new_onenter", "STAGEENTER"), "the workflow 'new_onenter' runs on stage "
     "enter: not converted"),
    (k.stage_trigger("new_onexit", "STAGEEXIT"), "runs on stage exit"),
    (k.step("new_link", "Open", parameters="<parameters><LinkControlDefinitionId>{1}"
            "</LinkControlDefinitionId></parameters>"), "step 'Open' is a system link control"),
    (k.step("new_thing", "Odd", class_id="deadbeef-0000-0000-0000-000000000000"),
     "its form control deadbeef-0000-0000-0000-000000000000 is not one bpf knows"),
], ids=["action step", "flow step", "workflow on enter", "workflow on exit", "link control",
        "unknown control"])
def test_each_loss_is_reported_and_commented_in_the_yaml(tmp_path, activity, loss):
    conversion = one_stage(tmp_path, k.step("new_name", "Name"), activity)
    assert any(loss in text for text in conversion.losses), conversion.losses
    assert loss in comments(conversion.yaml).split("lost: ", 1)[1]
    assert conversion.definition.stage("only").step("new_name").label == "Name"


def test_labels_in_other_languages_are_a_loss(tmp_path):
    conversion = one_stage(tmp_path, k.step("new_name", "Name",
                                            labels={"1033": "Name", "1036": "Nom"}),
                           labels={"1033": "Only", "1031": "Einzig"})
    assert conversion.definition.stage("only").step("new_name").label == "Name"
    assert any("language codes 1031, 1036" in loss for loss in conversion.losses)


def test_a_relationship_between_tables_is_a_loss(tmp_path):
    xaml = k.workflow(
        k.relationships((A, B, "opportunity_originating_lead", "originatingleadid")),
        k.entity("lead", k.stage(A, "Qualify", next_id=B)),
        k.entity("opportunity", k.stage(B, "Develop", next_id=None)))
    (conversion,) = convert(k.write_flow(tmp_path, xaml, k.row("new_l2o", "lead", "L2O")))
    assert [s.entity for s in conversion.definition.stages] == ["lead", "opportunity"]
    assert any("relationship 'opportunity_originating_lead' (originatingleadid)" in loss
               for loss in conversion.losses)


def test_a_branch_bpf_cannot_compare_is_left_out_and_reported(tmp_path):
    conversion = two_way(tmp_path, k.compare("new_name", "BeginsWith", "Con", kind="String"))
    assert any("the operator 'BeginsWith'" in loss for loss in conversion.losses)
    assert conversion.definition.successors("start") == ("no",)
