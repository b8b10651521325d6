"""What the store tests share: the processes they run, a clock, and the code that runs in
other OS processes (restart, concurrent writers, a writer killed mid-stream)."""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import bpf
from bpf import ProcessDefinition, Stage, Step

PROCESS = "opportunity-sales"


def sales(version: int = 1) -> ProcessDefinition:
    """Opportunity sales: qualify > develop > propose > close. Version 2 renames develop to
    build, adds a negotiate stage before close and drops nothing else."""
    qualify = Stage(
        id="qualify", name="Qualify", entity="opportunity", phase="1-Qualify",
        category="Qualify", probability=10, stale_after_days=7,
        steps=[Step(field="budget", label="Budget", type="money", required=True)],
    )
    develop = Stage(id="develop", name="Develop", entity="opportunity", phase="2-Develop",
                    category="Develop", probability=40, stale_after_days=14)
    build = Stage(id="build", name="Build", entity="opportunity", phase="2-Develop",
                  category="Develop", probability=40, stale_after_days=14)
    propose = Stage(id="propose", name="Propose", entity="opportunity", phase="3-Propose",
                    category="Propose", probability=70)
    negotiate = Stage(id="negotiate", name="Negotiate", entity="opportunity", phase="3-Propose",
                      category="Propose", probability=80)
    close = Stage(id="close", name="Close", entity="opportunity", phase="4-Close",
                  category="Close", probability=90)
    stages = [qualify, develop, propose, close] if version == 1 else [
        qualify, build, propose, negotiate, close,
    ]
    return ProcessDefinition(
        process=PROCESS, name="Opportunity Sales", entity="opportunity", version=version,
        pipeline_field="stepname", stages=stages, outcomes={"won": bpf.Outcome("won")},
    )


def lead_to_opportunity() -> ProcessDefinition:
    """A process spanning two entities: the lead, then the opportunity made from it."""
    return ProcessDefinition(
        process="lead-to-opportunity", name="Lead to Opportunity", entity="lead",
        pipeline_field="leadstage",
        stages=[
            Stage(id="qualify", name="Qualify", entity="lead", phase="1-Qualify"),
            Stage(id="develop", name="Develop", entity="opportunity", phase="2-Develop"),
            Stage(id="close", name="Close", entity="opportunity", phase="4-Close"),
        ],
    )


class Clock:
    """A settable clock: every call returns the current time, `advance` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def engine_on(url: str, **kwargs: Any) -> bpf.Engine:
    engine = bpf.Engine(url, **kwargs)
    engine.register(sales(1))
    engine.register(lead_to_opportunity())
    return engine


def snapshot(engine: bpf.Engine, record_id: str, process: str) -> dict[str, Any]:
    """Everything a user sees of a record's flow, as JSON-able values."""
    entity = "lead" if record_id.startswith("lead-") else "opportunity"
    flow = engine.flow(record_id, process, entity=entity)
    last = engine.last_stage_change(record_id, entity=entity)
    return {
        "id": flow.id,
        "version": flow.version,
        "stage": flow.stage.id,
        "path": list(flow.traversed_path),
        "status": flow.status,
        "outcome": flow.outcome,
        "revision": flow.revision,
        "records": flow.record_ids,
        "started_at": flow.started_at.isoformat(),
        "stage_started_at": flow.stage_started_at.isoformat(),
        "completed_at": flow.completed_at.isoformat() if flow.completed_at else None,
        "history": [_change(e) for e in flow.history],
        "last_stage_change": _change(last) if last else None,
        "active_flow": (engine.active_flow(record_id, entity=entity) or flow).id,
    }


def _change(e: bpf.StageChange) -> list[Any]:
    return [e.flow_id, e.process, e.version, e.record_id, e.kind, e.from_stage, e.to_stage,
            e.phase, e.at.isoformat(), e.actor]


# -- run in other processes --------------------------------------------------------------------


def print_snapshots(url: str, targets: list[tuple[str, str]]) -> None:
    """In a new process: print the snapshot of each (record id, process) as one JSON line."""
    with engine_on(url) as engine:
        print(json.dumps([snapshot(engine, rid, process) for rid, process in targets]))


def race(url: str, record_ids: list[str], barrier: Any, results: Any) -> None:
    """One of two racing processes: for each record, load its flow, wait for the other
    process, then move it forward; report "moved" or "conflict" per record."""
    with engine_on(url) as engine:
        for rid in record_ids:
            flow = engine.flow(rid, PROCESS).bind({"id": rid, "budget": 1000})
            barrier.wait()
            try:
                flow.next()
                outcome = "moved"
            except bpf.ConcurrencyError:
                outcome = "conflict" if flow.stage.id == "qualify" and flow.revision == 1 else "bad"
            results.put((rid, outcome))


def stream(url: str, flows: int, seed: int) -> None:
    """Start ``flows`` flows (or load them), then move them at random forever, printing a
    line per commit."""
    rnd = random.Random(seed)
    with engine_on(url) as engine:
        records = [{"id": f"crash-{i}", "budget": 1} for i in range(flows)]
        if engine.store.stage_counts(PROCESS, status=None):  # a previous stream was killed
            live = [engine.flow(r["id"], PROCESS).bind(r) for r in records]
        else:
            with engine.batch():
                live = [engine.start(PROCESS, r) for r in records]
        print("started", flush=True)
        n = 0
        while True:
            if rnd.random() < 0.2:
                with engine.batch():
                    for flow in rnd.sample(live, 5):
                        _random_move(flow, rnd)
            else:
                _random_move(rnd.choice(live), rnd)
            n += 1
            print(n, flush=True)


def _random_move(flow: bpf.Flow, rnd: random.Random) -> None:
    if flow.status != "active":
        flow.reactivate()
    elif flow.is_last_stage and rnd.random() < 0.5:
        flow.finish("won")
    elif len(flow.traversed_path) > 1 and rnd.random() < 0.3:
        flow.previous()
    elif not flow.is_last_stage:
        flow.next()
    else:
        flow.set_active(flow.traversed_path[0])


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "snapshots":
        print_snapshots(args[0], [tuple(t) for t in json.loads(args[1])])
    elif command == "stream":
        stream(args[0], int(args[1]), int(args[2]))
