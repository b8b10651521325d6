"""Random operation sequences on several flows and records keep the runtime's invariants.

The expectations come from the definitions, not from the engine's helpers: the next stage is
the first branch whose condition holds, the gate is the stage's required steps, and the pipeline
phase of a record is the phase of the last stage change this test saw succeed on it.
"""

from __future__ import annotations

import copy
import itertools

from blocking import open_engine
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from runtime_support import INTRUDER, LEAD, MANAGER, REVIEW, SALES, SELLER, Clock

import bpf

DEFINITIONS = {
    d.process: d for d in map(bpf.loads_process, (SALES, REVIEW, LEAD))
}
RECORDS = ["opp-1", "opp-2", "lead-1"]
FIELDS = sorted({s.field for d in DEFINITIONS.values() for st_ in d.stages for s in st_.steps})
VALUES = st.sampled_from([None, "", "x", 0, 50_000, 250_000, True, False, [], ["a"]])
ACTORS = st.sampled_from([SELLER, MANAGER, INTRUDER, None])


def walk_ok(definition: bpf.ProcessDefinition, path: tuple[str, ...]) -> bool:
    return all(b in definition.successors(a) for a, b in itertools.pairwise(path))


def allowed(definition: bpf.ProcessDefinition, actor: bpf.Actor | None) -> bool:
    return not definition.roles or (actor is not None and bool(actor.roles & set(definition.roles)))


class Runtime(RuleBasedStateMachine):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.engine = open_engine(kind, clock=Clock())
        for definition in DEFINITIONS.values():
            with __import__("warnings").catch_warnings():
                __import__("warnings").simplefilter("ignore", bpf.PipelineFieldWarning)
                self.engine.register(definition)
        self.records = {rid: {"id": rid} for rid in RECORDS}
        self.engine.record_factory("opportunity", lambda flow, lead: self.records["opp-2"])
        self.flows: list[bpf.Flow] = []
        self.phase: dict[str, str] = {}  # record id -> phase of the last stage change seen

    def state(self) -> tuple:
        return (
            [(f.stage.id, f.status, f.traversed_path, f.history, f.revision) for f in self.flows],
            copy.deepcopy(self.records),
        )

    def attempt(self, operation, flow: bpf.Flow | None = None):
        before = self.state()
        try:
            return operation()
        except bpf.BpfError:
            assert self.state() == before, "a refused operation changed something"
            return None

    @rule(process=st.sampled_from(sorted(DEFINITIONS)), rid=st.sampled_from(RECORDS),
          actor=ACTORS)
    def start(self, process, rid, actor):
        definition = DEFINITIONS[process]
        if (definition.entity == "lead") != (rid == "lead-1"):
            return
        record = self.records[rid]
        exists = any(f.process.process == process and f.record_id == rid for f in self.flows)
        flow = self.attempt(lambda: self.engine.start(process, record, actor=actor))
        if flow is not None:
            assert not exists and allowed(definition, actor)
            self.flows.append(flow)
            self.phase[rid] = definition.first_stage.phase
        else:
            assert exists or not allowed(definition, actor)

    @rule(rid=st.sampled_from(RECORDS), field=st.sampled_from(FIELDS), value=VALUES)
    def edit(self, rid, field, value):
        self.records[rid][field] = value

    @precondition(lambda self: self.flows)
    @rule(data=st.data(), actor=ACTORS)
    def next(self, data, actor):
        flow = data.draw(st.sampled_from(self.flows))
        definition = flow.process
        stage = flow.stage
        record = flow.record
        values = dict(record)
        expected_missing = [s.field for s in stage.steps
                            if s.required and not s.is_satisfied(values.get(s.field))]
        expected = next((b.stage for b in definition.branches(stage.id)
                         if b.when is None or b.when.evaluate(values.get)), None)
        moved = self.attempt(lambda: flow.next(actor=actor))
        if moved is None:
            assert (flow.status != "active" or not allowed(definition, actor)
                    or expected_missing or expected is None)
            return
        assert flow.status == "active" and allowed(definition, actor)
        assert not expected_missing, f"moved past {stage.id} with {expected_missing} empty"
        assert moved.id == expected
        self.phase[flow.history[-1].record_id] = moved.phase

    @precondition(lambda self: self.flows)
    @rule(data=st.data(), actor=ACTORS)
    def back(self, data, actor):
        flow = data.draw(st.sampled_from(self.flows))
        path = flow.traversed_path
        if data.draw(st.booleans()):
            moved = self.attempt(lambda: flow.previous(actor=actor))
            expected = path[-2] if len(path) > 1 else None
        else:
            target = data.draw(st.sampled_from([s.id for s in flow.process.stages]))
            moved = self.attempt(lambda: flow.set_active(target, actor=actor))
            expected = target if target in path[:-1] else None
        if moved is None:  # refused: only for a reason the definition gives
            assert expected is None or flow.status != "active" or not allowed(flow.process, actor)
            return
        assert moved.id == expected
        assert flow.traversed_path == path[: path.index(expected) + 1]
        self.phase[flow.history[-1].record_id] = moved.phase

    @precondition(lambda self: self.flows)
    @rule(data=st.data(), actor=ACTORS, outcome=st.sampled_from([None, "won", "lost"]))
    def status(self, data, actor, outcome):
        flow = data.draw(st.sampled_from(self.flows))
        operation = data.draw(st.sampled_from(["finish", "abandon", "reactivate"]))
        status, at_last = flow.status, flow.process.is_last(flow.stage.id)
        if operation == "finish":
            done = self.attempt(lambda: flow.finish(outcome, actor=actor) or True)
            if done:
                assert status == "active" and at_last
                assert outcome is None or outcome in flow.process.outcomes
            else:  # refused: only for a reason the definition gives
                assert not (status == "active" and at_last and allowed(flow.process, actor)
                            and (outcome is None or outcome in flow.process.outcomes))
        elif operation == "abandon":
            done = self.attempt(lambda: flow.abandon(actor=actor) or True)
            assert bool(done) == (status == "active" and allowed(flow.process, actor))
        else:
            done = self.attempt(lambda: flow.reactivate(actor=actor) or True)
            assert bool(done) == (status != "active" and allowed(flow.process, actor))

    @invariant()
    def paths_are_walks_ending_at_the_active_stage(self):
        for flow in self.flows:
            path = flow.traversed_path
            assert path[0] == flow.process.first_stage.id
            assert path[-1] == flow.stage.id
            assert walk_ok(flow.process, path)
            assert flow.stage.id in flow.active_path
            assert walk_ok(flow.process, flow.active_path)

    @invariant()
    def the_pipeline_phase_is_the_last_change_of_any_flow(self):
        for rid, phase in self.phase.items():
            assert self.records[rid]["stepname"] == phase
            entity = "lead" if rid == "lead-1" else "opportunity"
            assert self.engine.last_stage_change(rid, entity=entity).phase == phase

    @invariant()
    def history_replays_to_the_current_state(self):
        for flow in self.flows:
            history = flow.history
            stage, status = None, None
            for entry in history:
                assert entry.from_stage == stage or entry.kind == "start"
                stage = entry.to_stage
                status = {"finish": "finished", "abandon": "aborted"}.get(entry.kind, "active")
            assert (stage, status) == (flow.stage.id, flow.status)
            assert flow.revision == len(history)

    def teardown(self) -> None:
        self.engine.close()


def test_random_operations_keep_the_runtime_invariants(kind):
    run_state_machine_as_test(
        lambda: Runtime(kind),
        settings=settings(max_examples=60, stateful_step_count=30, deadline=None))
