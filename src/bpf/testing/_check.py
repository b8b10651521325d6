"""`check_process`: one call that property-tests a process and reports a readable failure."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import hypothesis
from hypothesis.stateful import run_state_machine_as_test

from bpf.definition.loader import load_process
from bpf.definition.model import ProcessDefinition
from bpf.runtime.engine import Engine
from bpf.testing._coverage import Gaps, ProcessNotCovered, branch_label
from bpf.testing._expected import Refuses
from bpf.testing._failure import ProcessCheckFailed
from bpf.testing._machine import FlowMachine, default_settings
from bpf.testing._minimize import minimize

Process = str | os.PathLike[str] | ProcessDefinition


@attrs.frozen
class CheckReport:
    """What a passing `check_process` run exercised."""

    process: str
    examples: int
    steps: int
    seconds: float
    #: how many times each stage of each process was entered, by process and stage
    stages_entered: Mapping[str, Mapping[str, int]]
    #: the stages of each process no example entered: the check says little about them
    stages_missed: Mapping[str, tuple[str, ...]]
    #: how many operations succeeded, and how many were refused for each reason
    results: Mapping[str, int]
    #: how many times each branch was taken, by process and branch (``develop → propose``)
    branches_taken: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    #: the branches of each process no example took
    branches_missed: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    #: how many flows finished with each declared outcome, by process
    outcomes_reached: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    #: the declared outcomes of each process no flow finished with
    outcomes_missed: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    #: how many operations were refused for each reason (a `bpf.Reason`, ``unknown``...)
    refusals: Mapping[str, int] = attrs.field(factory=dict)
    #: what the run missed of the process checked, each with why (empty: all reached)
    gaps: tuple[str, ...] = ()

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else float("inf")

    @property
    def covered(self) -> bool:
        """Whether every stage, branch and outcome of the process checked was reached."""
        return not self.gaps

    def __str__(self) -> str:
        missed = "; ".join(
            f"{p}: {', '.join(s)}" for p, s in self.stages_missed.items() if s
        )
        main = self.process
        taken = sum(1 for n in self.branches_taken.get(main, {}).values() if n)
        reached = sum(1 for n in self.outcomes_reached.get(main, {}).values() if n)
        entered = sum(1 for n in self.stages_entered.get(main, {}).values() if n)
        return (
            f"{self.process}: {self.examples} examples, {self.steps} steps in "
            f"{self.seconds:.1f}s; stages {entered}/{len(self.stages_entered.get(main, {}))}, "
            f"branches {taken}/{len(self.branches_taken.get(main, {}))}, outcomes "
            f"{reached}/{len(self.outcomes_reached.get(main, {}))}"
            + (f"; stages never entered: {missed}" if missed else "")
        )


def _load(process: Process) -> ProcessDefinition:
    if isinstance(process, ProcessDefinition):
        return process
    if isinstance(process, (str, os.PathLike)):
        return load_process(Path(process))
    raise TypeError(
        f"check_process takes a path to a process YAML or a ProcessDefinition, got "
        f"{type(process).__name__}"
    )


def check_process(
    process: Process,
    *,
    others: Iterable[Process] = (),
    max_examples: int = 100,
    steps: int = 30,
    store: str | None = None,
    engine_factory: Callable[..., Engine] | None = None,
    seed: int | None = None,
    derandomize: bool = False,
    settings: hypothesis.settings | None = None,
    require_coverage: bool = True,
    expect_refusals: Iterable[Refuses] = (),
    invariants: Iterable[Callable[[Any], None]] = (),
) -> CheckReport:
    """Property-test ``process`` (a YAML path or a `ProcessDefinition`) on real flows.

    Runs `FlowMachine` for ``max_examples`` random sequences of up to ``steps`` operations,
    with ``others`` (paths or definitions) running on the same records. ``store`` None or
    "memory" runs in memory; "sqlite" on a temporary file per example, a PostgreSQL URL
    (``postgresql+psycopg://...``) in a schema of its own per example, both also checking
    that a new engine sees the same state. ``expect_refusals``: what your engine's hooks
    refuse on purpose (`Refuses`). ``invariants``: functions of the machine that raise
    AssertionError when your own rule is broken, run after every step. ``engine_factory``
    makes each engine (called with the store URL, or with None or nothing in memory).
    ``seed`` or ``derandomize`` make the run reproducible. ``settings`` (Hypothesis settings)
    replaces ``max_examples``, ``steps`` and ``derandomize``; ``seed`` still applies on top.

    Returns a `CheckReport`: the stages entered, branches taken, outcomes reached and
    refusals by reason. On a violation raises `ProcessCheckFailed` (an AssertionError) whose
    message is the shrunk counterexample as readable steps and the property broken. When the
    run passed but missed a stage, branch or outcome of ``process``, raises
    `ProcessNotCovered` (an AssertionError) saying which and why, unless
    ``require_coverage`` is False (the report's ``gaps`` then say it).
    """
    definition = _load(process)
    extra = [_load(p) for p in others]
    if settings is None:
        settings = default_settings(max_examples, steps)
        if derandomize:
            settings = hypothesis.settings(settings, derandomize=True)
    machine = FlowMachine(definition, others=extra, store=store, engine_factory=engine_factory,
                          settings=settings, expect_refusals=expect_refusals,
                          invariants=invariants)
    began = time.perf_counter()
    try:
        if seed is None:
            run_state_machine_as_test(machine, settings=settings)
        else:
            from hypothesis.stateful import get_state_machine_test

            test = get_state_machine_test(machine, settings=settings)
            hypothesis.seed(seed)(test)()
    except ProcessCheckFailed as failure:
        shortest = minimize(machine, failure)
        # Raised afresh, without Hypothesis's notes and frames: the steps say it all.
        raise ProcessCheckFailed(
            shortest.process, shortest.steps, shortest.violation, shortest.property,
            shortest.source,
        ) from None
    seconds = time.perf_counter() - began
    stats = machine.stats  # type: ignore[attr-defined]
    entered = {
        d.process: {s.id: stats.stages[d.process, s.id] for s in d.stages}
        for d in (definition, *extra)
    }
    missed = {
        d.process: tuple(s for s, n in entered[d.process].items() if not n)
        for d in (definition, *extra)
    }
    taken = {
        d.process: {branch_label(s.id, b): stats.branches[d.process, s.id, i]
                    for s in d.stages for i, b in enumerate(d.branches(s.id))}
        for d in (definition, *extra)
    }
    reached = {
        d.process: {o: stats.outcomes[d.process, o] for o in d.outcomes}
        for d in (definition, *extra)
    }
    refusals: dict[str, int] = {}
    for key, n in stats.results.items():
        if " refused: " in key:
            reason = key.split(" refused: ", 1)[1]
            refusals[reason] = refusals.get(reason, 0) + n
    gaps = Gaps(definition, stats, machine._witnesses).lines(stats.examples)  # type: ignore[attr-defined]
    report = CheckReport(
        process=definition.process,
        examples=stats.examples,
        steps=stats.steps,
        seconds=seconds,
        stages_entered=entered,
        stages_missed=missed,
        results=dict(stats.results),
        branches_taken=taken,
        branches_missed={p: tuple(b for b, n in t.items() if not n) for p, t in taken.items()},
        outcomes_reached=reached,
        outcomes_missed={p: tuple(o for o, n in r.items() if not n) for p, r in reached.items()},
        refusals=dict(sorted(refusals.items(), key=lambda kv: -kv[1])),
        gaps=tuple(gaps),
    )
    if require_coverage and gaps:
        raise ProcessNotCovered(definition.process, gaps, report)
    return report

