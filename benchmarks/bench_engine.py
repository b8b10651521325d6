"""In-memory speed: a full forward move and a flow start, against the baselines, in one run.

    python benchmarks/bench_engine.py [--records 50000] [--no-write]

Every figure is per forward move on a 4-stage gated process (three forward moves per record),
the median of 5 runs, with these baselines measured in the same run:

- plain dict: a dict transition table and a gate function, no history (the floor);
- transitions, one shared Machine with no model attached, records driven with
  ``machine.events["next"].trigger(record)``;
- transitions, one Machine per record;
- python-statemachine, one StateMachine per record.

bpf's move is the whole thing: role check, gate, branch evaluation, the pipeline field, a
history entry, a registered ``stage_changed`` hook and the store write (memory store).
"""

from __future__ import annotations

import argparse
import itertools
import tracemalloc
import warnings

from _common import per_call, table, us, write_section

import bpf

STAGES = ["qualify", "develop", "propose", "close"]
REQUIRED = {
    "qualify": ("parentaccountid", "budgetamount"),
    "develop": ("customerneed",),
    "propose": ("presentproposal",),
    "close": (),
}
FILLED = {"parentaccountid": "acc-1", "budgetamount": 5_000, "customerneed": "laptops",
          "presentproposal": True}

YAML = """
process: bench
name: Bench
entity: opportunity
pipeline_field: stepname
roles: [salesperson]
stages:
  - id: qualify
    name: Qualify
    category: Qualify
    steps:
      - {field: parentaccountid, label: Account, type: lookup, required: true}
      - {field: budgetamount, label: Budget, type: money, required: true}
    next:
      - when: {field: budgetamount, gt: 1000000}
        stage: review
      - stage: develop
  - id: develop
    name: Develop
    category: Develop
    steps: [{field: customerneed, label: Need, required: true}]
  - id: propose
    name: Propose
    category: Propose
    steps: [{field: presentproposal, label: Present, type: boolean, required: true}]
  - id: close
    name: Close
    category: Close
    end: true
  - id: review
    name: Review
    category: Approval
    next: [{stage: close}]
"""


def gate(record: dict, stage: str) -> bool:
    return all(record.get(f) not in (None, "") for f in REQUIRED[stage])


# -- baselines -----------------------------------------------------------------------------------


def plain_dict(n: int) -> tuple[float, float]:
    table_ = {"qualify": "develop", "develop": "propose", "propose": "close"}
    records = [dict(FILLED, id=i, state="qualify") for i in range(n)]
    it = iter(records * 1)

    def move() -> None:
        for record in records:
            for _ in range(3):
                if gate(record, record["state"]):
                    record["state"] = table_[record["state"]]

    def reset() -> None:
        for record in records:
            record["state"] = "qualify"

    seconds = _per_moves(move, reset, n)
    del it
    return seconds, _bytes_per(lambda: {"state": "qualify"}, n)


class Rec:
    __slots__ = ("id", "state", "values")

    def __init__(self, i: int) -> None:
        self.id = i
        self.state = "qualify"
        self.values = FILLED


def _transitions_spec() -> list[dict]:
    return [
        {"trigger": "next", "source": a, "dest": b,
         "conditions": [lambda event, a=a: gate(event.model.values, a)]}
        for a, b in itertools.pairwise(STAGES)
    ]


def transitions_shared(n: int) -> tuple[float, float]:
    from transitions import Machine

    machine = Machine(model=None, states=STAGES, initial=None, auto_transitions=False,
                      send_event=True, transitions=_transitions_spec())
    event = machine.events["next"]
    records = [Rec(i) for i in range(n)]

    def move() -> None:
        trigger = event.trigger
        for record in records:
            trigger(record)
            trigger(record)
            trigger(record)

    def reset() -> None:
        for record in records:
            record.state = "qualify"

    return _per_moves(move, reset, n), _bytes_per(lambda: Rec(0), n)


def transitions_per_record(n: int) -> tuple[float, float, float]:
    from transitions import Machine

    spec = _transitions_spec()

    def make(i: int) -> Rec:
        record = type("M", (), {})()
        record.values = FILLED
        Machine(model=record, states=STAGES, initial="qualify", auto_transitions=False,
                send_event=True, transitions=spec)
        return record

    records = [make(i) for i in range(n)]

    def move() -> None:
        for record in records:
            record.next()
            record.next()
            record.next()

    def reset() -> None:
        for record in records:
            record.state = "qualify"

    create = per_call(lambda: make(0), 2000, repeat=3)
    return _per_moves(move, reset, n), create, _bytes_per(lambda: make(0), min(n, 5000))


def statemachine_per_record(n: int) -> tuple[float, float, float]:
    warnings.simplefilter("ignore", DeprecationWarning)  # its current_state, the same in 2.x
    from statemachine import State, StateMachine

    class Deal(StateMachine):
        qualify = State(initial=True)
        develop = State()
        propose = State()
        close = State(final=True)
        next = (qualify.to(develop, cond="ok") | develop.to(propose, cond="ok")
                | propose.to(close, cond="ok"))

        def __init__(self) -> None:
            self.values = FILLED
            super().__init__()

        def ok(self) -> bool:
            return gate(self.values, self.current_state.id)

    records = [Deal() for _ in range(n)]

    def move() -> None:
        for record in records:
            record.next()
            record.next()
            record.next()

    def reset() -> None:
        records[:] = [Deal() for _ in range(n)]

    create = per_call(Deal, 2000, repeat=3)
    return _per_moves(move, reset, n), create, _bytes_per(Deal, min(n, 5000))


# -- bpf -----------------------------------------------------------------------------------------


def bpf_engine() -> tuple[bpf.Engine, bpf.Actor]:
    engine = bpf.Engine()
    engine.on("stage_changed", lambda change: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine.register(bpf.loads_process(YAML))
    return engine, bpf.Actor("maria", roles={"salesperson"})


def bpf_moves(n: int) -> float:
    engine, actor = bpf_engine()
    flows: list[bpf.Flow] = []

    def reset() -> None:
        nonlocal engine, flows
        engine, _ = bpf_engine()
        flows = [engine.start("bench", dict(FILLED, id=f"opp-{i}"), actor=actor)
                 for i in range(n)]

    def move() -> None:
        for flow in flows:
            flow.next(actor=actor)
            flow.next(actor=actor)
            flow.next(actor=actor)

    return _per_moves(move, reset, n)


def bpf_start(n: int) -> tuple[float, float]:
    engine, actor = bpf_engine()
    records = [dict(FILLED, id=f"opp-{i}") for i in range(n)]
    state = {"i": 0}

    def start() -> None:
        engine.start("bench", records[state["i"]], actor=actor)
        state["i"] += 1

    seconds = per_call(start, n // 5, repeat=5)
    engine2, _ = bpf_engine()
    # stepname pre-set: the growth of the caller's own dict is not bpf's memory.
    records2 = [dict(FILLED, id=f"x-{i}", stepname=None) for i in range(n)]
    it = iter(records2)
    per = _bytes_per(lambda: engine2.start("bench", next(it), actor=actor), n // 2,
                     keep=False)
    return seconds, per


# -- helpers -------------------------------------------------------------------------------------


def _per_moves(move, reset, n: int, repeat: int = 5) -> float:
    import gc
    import statistics
    import time

    runs = []
    for _ in range(repeat):
        reset()
        gc.collect()
        gc.disable()
        t0 = time.perf_counter()
        move()
        runs.append((time.perf_counter() - t0) / (3 * n))
        gc.enable()
    return statistics.median(runs)


def _bytes_per(make, n: int, *, keep: bool = True) -> float:
    """Bytes allocated and kept per object made (tracemalloc)."""
    import gc

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make() for _ in range(n)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    n = args.records

    dict_move, dict_bytes = plain_dict(n)
    shared_move, shared_bytes = transitions_shared(n)
    per_move, per_create, per_bytes = transitions_per_record(n)
    sm_move, sm_create, sm_bytes = statemachine_per_record(n)
    move = bpf_moves(n)
    start, start_bytes = bpf_start(n)

    rows = [
        ["**bpf** full move (gate, branch, pipeline field, history, hook, store)", us(move),
         f"{1 / move:,.0f}", f"{move / shared_move:.2f}×", f"{move / dict_move:.0f}×"],
        ["plain dict table + gate (no history)", us(dict_move), f"{1 / dict_move:,.0f}",
         f"{dict_move / shared_move:.2f}×", "1×"],
        ["transitions, shared machine, `events['next'].trigger(rec)`", us(shared_move),
         f"{1 / shared_move:,.0f}", "1.00×", f"{shared_move / dict_move:.0f}×"],
        ["transitions, Machine per record", us(per_move), f"{1 / per_move:,.0f}",
         f"{per_move / shared_move:.2f}×", f"{per_move / dict_move:.0f}×"],
        ["python-statemachine, StateMachine per record", us(sm_move), f"{1 / sm_move:,.0f}",
         f"{sm_move / shared_move:.2f}×", f"{sm_move / dict_move:.0f}×"],
    ]
    moves = table(rows, ["forward move, in memory", "median", "moves/s", "vs shared trigger",
                         "vs dict floor"])
    creation = table(
        [
            ["**bpf** `engine.start` (flow + first history entry + record index)", us(start),
             f"{start_bytes:,.0f} B"],
            ["plain dict record state", "—", f"{dict_bytes:,.0f} B"],
            ["transitions shared machine (record object only)", "—", f"{shared_bytes:,.0f} B"],
            ["transitions Machine per record", us(per_create), f"{per_bytes:,.0f} B"],
            ["python-statemachine per record", us(sm_create), f"{sm_bytes:,.0f} B"],
        ],
        ["starting / creating", "median", "bytes per flow (tracemalloc)"],
    )
    move_met = move <= 10e-6 and move <= 1.3 * shared_move
    verdict = (
        f"Target: a full move ≤ 10 µs and ≤ 1.3× the bare shared trigger: **{us(move)}, "
        f"{move / shared_move:.2f}×** → {'met' if move_met else 'MISSED'}. "
        f"Start ≤ 10 µs and ≤ 1 KB: **{us(start)}, {start_bytes:,.0f} B** → "
        f"{'met' if start <= 10e-6 and start_bytes <= 1024 else 'MISSED'}."
    )
    body = (f"{n:,} records, 3 forward moves each, median of 5 runs.\n\n{moves}\n\n"
            f"{creation}\n\n{verdict}\n")
    print(body)
    if not args.no_write:
        write_section("engine", "Moves and starts in memory", body,
                      f"python benchmarks/bench_engine.py --records {n}")


if __name__ == "__main__":
    main()
