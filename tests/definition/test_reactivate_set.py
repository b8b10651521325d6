"""`reactivate: {set: ...}`: what reactivating a finished or abandoned flow sets on its record."""

from __future__ import annotations

import textwrap
import warnings

import pytest

import bpf

PROCESS = """\
process: deal
name: Deal
entity: opportunity
stages:
  - id: qualify
    name: Qualify
outcomes:
  won: {set: {statecode: won, statuscode: won}}
  lost: {set: {statecode: lost, statuscode: canceled}}
"""


def load(extra: str = "") -> bpf.ProcessDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("error", bpf.DefinitionWarning)
        return bpf.loads_process(PROCESS + textwrap.dedent(extra))


def test_a_process_says_what_reactivation_writes_back():
    definition = load("reactivate: {set: {statecode: open, statuscode: in_progress}}\n")
    assert dict(definition.reactivate_set) == {"statecode": "open", "statuscode": "in_progress"}


def test_without_reactivate_it_writes_nothing():
    assert dict(load().reactivate_set) == {}
    assert dict(bpf.ProcessDefinition("p", "P", "e", [
        bpf.Stage(id="a", name="A", entity="e", phase="A")]).reactivate_set) == {}


def test_reactivate_set_is_read_only():
    definition = load("reactivate: {set: {statecode: open, statuscode: in_progress}}\n")
    with pytest.raises(TypeError):
        definition.reactivate_set["statecode"] = "won"  # type: ignore[index]


@pytest.mark.parametrize("name", ["opportunity-sales", "lead-to-opportunity", "phone-to-case"])
def test_the_shipped_processes_undo_every_field_their_outcomes_set(name):
    definition = bpf.standard_process(name)
    set_back = definition.reactivate_set
    for outcome in definition.outcomes.values():
        assert set(outcome.set) <= set(set_back)
        for field, value in outcome.set.items():
            assert set_back[field] != value


@pytest.mark.parametrize("name", ["opportunity-sales", "lead-to-opportunity"])
def test_a_reactivated_opportunity_is_open(name):
    assert bpf.standard_process(name).reactivate_set["statecode"] == "open"


def test_an_extending_process_inherits_or_replaces_it(tmp_path):
    inherited = bpf.loads_process("extends: opportunity-sales\nprocess: mine\n")
    assert inherited.reactivate_set == bpf.standard_process("opportunity-sales").reactivate_set
    replaced = bpf.loads_process(textwrap.dedent("""\
        extends: opportunity-sales
        process: mine
        outcomes: {won: {set: {statecode: won}}}
        reactivate: {set: {statecode: reopened}}
        """))
    assert dict(replaced.reactivate_set) == {"statecode": "reopened"}


@pytest.mark.parametrize(("extra", "message"), [
    ("reactivate: {sett: {statecode: open}}\n",
     "<string>:10:13: a reactivate is missing `set` (required keys: set)\n"
     "<string>:10:14: unknown key `sett` in reactivate (did you mean `set`?); allowed keys: set"),
    ("reactivate: {}\n", "<string>:10:13: a reactivate is missing `set` (required keys: set)"),
    ("reactivate: {set: {statecode: .nan}}\n",
     "<string>:10:31: `statecode` must be a finite number, not .nan"),
    ("reactivate: {set: {9lives: open}}\n",
     "<string>:10:20: the key '9lives' is not a valid field name: use letters, digits and '_', not "
     "starting with a digit (e.g. parentcontactid)"),
])
def test_a_bad_reactivate_is_located(extra, message):
    with pytest.raises(bpf.DefinitionError) as info:
        load(extra)
    assert [str(p) for p in info.value.problems] == message.split("\n")


def test_a_field_an_outcome_sets_and_reactivation_leaves_is_a_warning():
    with pytest.warns(bpf.DefinitionWarning) as caught:
        bpf.loads_process(PROCESS + "reactivate: {set: {statecode: open}}\n")
    assert [str(w.message) for w in caught] == [
        "<string>:10:14: outcome 'won' sets 'statuscode', which `reactivate` does not set "
        "back: a reactivated record keeps statuscode = 'won'",
        "<string>:10:14: outcome 'lost' sets 'statuscode', which `reactivate` does not set "
        "back: a reactivated record keeps statuscode = 'canceled'",
    ]
