"""`bpf.interop.transitions.machine`: a bpf process drives the user's own transitions models."""

from __future__ import annotations

from pathlib import Path

import pytest
from transitions import Machine, MachineError

import bpf
from bpf.interop.transitions import machine

EXAMPLES = Path(__file__).resolve().parents[2] / "processes" / "examples"


@pytest.fixture(scope="module")
def gated() -> bpf.ProcessDefinition:
    return bpf.load_process(EXAMPLES / "opportunity-gated.yaml")


class Opportunity:
    """A plain object: its fields are attributes."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


class Row(dict):
    """A dict-like model: its fields are keys (transitions keeps its state as an attribute)."""


QUALIFIED = {"parentaccountid": "acc-1", "parentcontactid": "con-1", "budgetamount": 50_000,
             "purchaseprocess": "committee"}
DEVELOPED = {"customerneed": "a fleet", "proposedsolution": "trucks"}


def fill(model, fields):
    for field, value in fields.items():
        if isinstance(model, dict):
            model[field] = value
        else:
            setattr(model, field, value)


def test_states_are_the_stage_ids_and_a_model_starts_in_the_first_stage(gated):
    model = Opportunity()
    built = machine(gated, model)
    assert isinstance(built, Machine)
    assert list(built.states) == [s.id for s in gated.stages]
    assert model.state == "qualify"
    assert model.bpf_path == ("qualify",)


@pytest.mark.parametrize("make", [Opportunity, Row], ids=["object", "dict-like"])
def test_next_is_refused_until_every_required_step_is_filled(gated, make):
    model = make()
    machine(gated, model)
    assert model.may_next() is False
    for field, value in QUALIFIED.items():
        assert model.next() is False, f"moved before {field} was filled"
        assert (model.state, model.bpf_path) == ("qualify", ("qualify",))
        fill(model, {field: value})
    assert model.may_next() is True
    assert model.next() is True
    assert (model.state, model.bpf_path) == ("develop", ("qualify", "develop"))


def test_a_dict_like_model_is_read_by_its_keys_not_its_attributes(gated):
    model = Row()
    machine(gated, model)
    for field, value in QUALIFIED.items():
        setattr(model, field, value)  # attributes of a mapping are not its fields
    assert model.next() is False
    fill(model, QUALIFIED)
    assert model.next() is True


@pytest.mark.parametrize(("value", "passes"), [
    (None, False), ("", False), ("   ", False), ([], False), (0, True), ("x", True),
])
def test_a_step_counts_as_filled_by_the_same_rule_as_the_engine(gated, value, passes):
    model = Opportunity(**{**QUALIFIED, "parentaccountid": value})
    machine(gated, model)
    assert model.next() is passes


def test_a_mark_complete_step_is_satisfied_only_by_true(gated):
    model = Opportunity(**QUALIFIED, **DEVELOPED, presentproposal=True)
    machine(gated, model)
    model.next(), model.next()
    assert model.state == "propose"
    for value in (False, 1, "yes", None):
        model.identifypursuitteam = value
        assert model.next() is False
    model.identifypursuitteam = True
    assert model.next() is True
    assert model.state == "close"


@pytest.mark.parametrize(("budget", "stage"), [
    (100_001, "executive-review"), (100_000, "propose"), (None, "propose"), ("a lot", "propose"),
])
def test_next_takes_the_first_branch_whose_condition_holds_else_the_default(gated, budget,
                                                                            stage):
    model = Opportunity(**QUALIFIED, **DEVELOPED)
    machine(gated, model)
    assert model.next() is True
    model.budgetamount = budget
    assert model.next() is True
    assert model.state == stage


def test_previous_goes_back_along_the_path_the_model_took(gated):
    model = Opportunity(**{**QUALIFIED, **DEVELOPED, "budgetamount": 250_000})
    machine(gated, model)
    model.next(), model.next()
    assert model.bpf_path == ("qualify", "develop", "executive-review")
    assert model.previous() is True
    assert (model.state, model.bpf_path) == ("develop", ("qualify", "develop"))
    model.budgetamount = 10  # a new path from here
    assert model.next() is True
    assert model.bpf_path == ("qualify", "develop", "propose")
    assert model.previous() is True and model.previous() is True
    assert (model.state, model.bpf_path) == ("qualify", ("qualify",))


def test_previous_is_not_gated(gated):
    model = Opportunity(**QUALIFIED)
    machine(gated, model)
    model.next()
    fill(model, {"parentaccountid": None})  # qualify's gate no longer holds: going back is fine
    assert model.previous() is True
    assert model.state == "qualify"


def test_no_previous_at_the_first_stage_and_no_next_at_the_last_raise_machine_error():
    definition = bpf.standard_process("opportunity-sales")
    model = Opportunity()
    machine(definition, model)
    with pytest.raises(MachineError, match="previous from state qualify"):
        model.previous()
    for _ in range(3):
        assert model.next() is True  # the shipped process requires no step
    assert model.state == "close"
    with pytest.raises(MachineError, match="next from state close"):
        model.next()
    assert model.bpf_path == ("qualify", "develop", "propose", "close")


def test_with_ignore_invalid_triggers_those_refusals_return_false():
    model = Opportunity()
    machine(bpf.standard_process("opportunity-sales"), model, ignore_invalid_triggers=True)
    assert model.previous() is False
    assert model.state == "qualify"


def test_a_shipped_process_gates_on_its_required_steps():
    model = Row()
    machine(bpf.standard_process("phone-to-case"), model)
    assert model.next() is False
    fill(model, {"customerid": "acc-9", "title": "Printer on fire"})
    assert model.next() is True and model.next() is True
    assert model.state == "resolve"
    with pytest.raises(MachineError):  # the last stage: bpf would say "finish the flow instead"
        model.next()


def test_one_model_runs_a_cross_entity_process_through_every_stage():
    model = Opportunity()
    machine(bpf.standard_process("lead-to-opportunity"), model)
    while model.state != "close":
        assert model.next() is True
    assert model.bpf_path == ("qualify", "develop", "propose", "close")


def test_one_machine_moves_many_models_each_on_its_own_path(gated):
    built = machine(gated)
    big, small = Opportunity(**QUALIFIED, **DEVELOPED), Row(**QUALIFIED, **DEVELOPED)
    big.budgetamount = 500_000
    built.add_model([big, small])
    for model in (big, small):
        model.next(), model.next()
    assert big.bpf_path == ("qualify", "develop", "executive-review")
    assert small.bpf_path == ("qualify", "develop", "propose")


def test_a_model_added_where_it_left_off_keeps_its_path(gated):
    model = Opportunity(**QUALIFIED, bpf_path=("qualify", "develop"))
    machine(gated).add_model(model, initial="develop")
    assert model.previous() is True
    assert model.state == "qualify"
    elsewhere = Opportunity(bpf_path=("qualify", "develop"))
    machine(gated).add_model(elsewhere, initial="propose")  # the path does not lead there
    assert elsewhere.bpf_path == ("propose",)
    assert elsewhere.previous() is False  # nothing to go back along


def test_transitions_callbacks_and_options_still_work(gated):
    seen = []
    model = Opportunity(**QUALIFIED, state="a field of the record")
    built = machine(gated, model, model_attribute="stage",
                    after_state_change=lambda: seen.append(model.stage))
    built.on_enter_develop(lambda: seen.append(("entered with path", model.bpf_path)))
    assert model.next() is True
    assert model.stage == "develop" and model.state == "a field of the record"
    assert seen == [("entered with path", ("qualify", "develop")), "develop"]


def test_the_definition_decides_the_states_and_moves():
    with pytest.raises(TypeError, match="states"):
        machine(bpf.standard_process("opportunity-sales"), states=["a", "b"])


def test_a_graph_bpf_cannot_run_is_refused_like_the_engine_refuses_it():
    stage = bpf.Stage(id="a", name="A", entity="x", phase="A",
                      next=(bpf.Branch("b", bpf.Compare("f", "equals", 1)),))
    definition = bpf.ProcessDefinition(process="p", name="P", entity="x",
                                       stages=(stage, bpf.Stage(id="b", name="B", entity="x",
                                                                phase="B")))
    with pytest.raises(bpf.RegistrationError, match="no default branch"):
        machine(definition)
