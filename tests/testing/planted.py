"""The corpus of planted bugs the kit must find: broken processes and broken engine behaviours.

Each `Planted` runs `check_process` with default settings and one seed, as a user would, on a
process with one bug in it, or on the kit's deal process with an engine, action or hook that
has one. Finding it means the check raises: `ProcessCheckFailed` (a property broken),
`ProcessNotCovered` (a stage, branch or outcome no flow reaches), or `bpf.DefinitionError`
(the process is refused at load). ``benchmarks/bench_kit.py`` measures the detection rate over
seeds; the kit's tests run each one on one seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from kit_support import (
    DEAL,
    AmnesiacEngine,
    BranchBlindEngine,
    CrashingEngine,
    EndlessEngine,
    ForgetfulEngine,
    GatelessEngine,
    LeakyEngine,
    PipelineSkippingEngine,
    RoleBlindEngine,
)

import bpf
from bpf.testing import check_process

# -- broken processes ------------------------------------------------------------------------------

CHANGE = """\
process: change
name: Change
entity: change
pipeline_field: changephase
roles: [change-manager]
stages:
  - id: assess
    name: Assess
    steps:
      - {{field: risk, label: Risk, type: choice, choices: [low, high], required: true}}
      - {{field: amount, label: Cost, type: money}}
      - {{field: summary, label: Summary, required: true}}
    next:
      - when: {when}
        stage: cab-review
      - stage: implement
  - id: cab-review
    name: CAB Review
    steps:
      - {{field: approvedby, label: Approved By, type: lookup, required: true}}
    next:
      - stage: implement
  - id: implement
    name: Implement
    steps:
      - {{field: implementedon, label: Implemented On, type: date, required: true}}
outcomes:
  done: {{set: {{statecode: closed}}}}
"""


def change(when: str) -> Callable[[], bpf.ProcessDefinition]:
    """The change process, its CAB review branch taken ``when``."""
    return lambda: bpf.loads_process(CHANGE.format(when=when))


def unreachable() -> bpf.ProcessDefinition:
    text = CHANGE.format(when="{field: risk, equals: high}").replace(
        "      - stage: implement\n  - id: cab-review", "      - stage: implement\n"
        "  - id: audit\n    name: Audit\n    end: true\n  - id: cab-review", 1)
    return bpf.loads_process(text)


def unfinishable() -> bpf.ProcessDefinition:
    """The last stage requires a choice step with no choices: no value fills it."""
    text = CHANGE.format(when="{field: risk, equals: high}").replace(
        "      - {field: implementedon, label: Implemented On, type: date, required: true}",
        "      - {field: implementedon, label: Implemented On, type: date, required: true}\n"
        "      - {field: signoff, label: Sign-off, type: choice, choices: [], required: true}")
    return bpf.loads_process(text)


# -- broken actions and hooks, found by a user's own invariant ----------------------------------


def with_action(stage: str, name: str) -> bpf.ProcessDefinition:
    """The deal process with ``name`` run on entering ``stage``."""
    return attrs.evolve(DEAL, stages=[
        attrs.evolve(s, on_enter=(name,)) if s.id == stage else s for s in DEAL.stages
    ])


def rekey_on_reentry(event: bpf.FlowEvent) -> None:
    """Stamps the deal on entering develop, and on a second entry after going back (a
    re-entry), loses the account: the planted four-move bug."""
    history = event.flow.history
    entries = [e for e in history if e.kind == "next" and e.to_stage == event.to_stage]
    went_back = any(e.kind in ("previous", "set_active") for e in history)
    if len(entries) >= 2 and went_back:
        event.record["parentaccountid"] = None


def past_qualify_keeps_its_account(machine: Any) -> None:
    """The user's invariant: a deal that left qualify still names its account."""
    for flow in machine.flows:
        if flow.stage.id != "qualify" and flow.status == "active":
            assert flow.record.get("parentaccountid"), (
                f"{flow.record['id']} is at {flow.stage.id} without an account")


def negative_budget(event: bpf.FlowEvent) -> None:
    """A hook that corrupts the record on every move into close."""
    if event.to_stage == "close":
        event.record["budgetamount"] = -1


def budgets_are_never_negative(machine: Any) -> None:
    for record in machine.records:
        budget = record.get("budgetamount")
        assert not (isinstance(budget, (int, float)) and budget < 0), (
            f"{record['id']}.budgetamount is {budget}")


def hook_engine(store: Any = None) -> bpf.Engine:
    engine = bpf.Engine(store)
    engine.on("stage_changed", negative_budget)
    return engine


# -- the corpus ------------------------------------------------------------------------------------


@attrs.frozen
class Planted:
    """One planted bug: ``check(seed)`` runs the check that must find it."""

    name: str
    run: Callable[[int], Any]

    def check(self, seed: int) -> Any:
        return self.run(seed)


def _process(name: str, make: Callable[[], bpf.ProcessDefinition]) -> Planted:
    return Planted(name, lambda seed: check_process(make(), seed=seed))


def _engine(name: str, factory: Any, store: str | None = None) -> Planted:
    return Planted(name, lambda seed: check_process(DEAL, engine_factory=factory, seed=seed,
                                                    store=store))


CORPUS: tuple[Planted, ...] = (
    _process("process: typo in a branch field (riks)", change("{field: riks, equals: high}")),
    _process("process: contradictory condition",
             change("{all: [{field: amount, gt: 10000}, {field: amount, lt: 5000}]}")),
    _process("process: branch its own gate rules out",
             change("{field: summary, is_set: false}")),
    _process("process: a branch compared with no choice",
             change("{field: risk, equals: critical}")),
    _process("process: a stage no branch leads to", unreachable),
    _process("process: a last step no value fills", unfinishable),
    _engine("engine: gates not enforced", GatelessEngine),
    _engine("engine: roles not enforced", RoleBlindEngine),
    _engine("engine: always the default branch", BranchBlindEngine),
    _engine("engine: finishes before the last stage", EndlessEngine),
    _engine("engine: a refusal that writes the record", LeakyEngine),
    _engine("engine: forgets the traversed path", ForgetfulEngine),
    _engine("engine: pipeline field unwritten", PipelineSkippingEngine),
    _engine("engine: crashes on a move back", CrashingEngine),
    _engine("store: loses the last history entry", AmnesiacEngine, store="sqlite"),
    Planted("hook: corrupts the record on entering close", lambda seed: check_process(
        DEAL, engine_factory=hook_engine, invariants=[budgets_are_never_negative], seed=seed)),
    Planted("action: misfires on a re-entry after previous", lambda seed: check_process(
        with_action("develop", "rekey"),
        engine_factory=lambda: bpf.Engine(actions={"rekey": rekey_on_reentry}),
        invariants=[past_qualify_keeps_its_account], seed=seed)),
)

