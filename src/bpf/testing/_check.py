"""`check_process`: one call that property-tests a process and reports a readable failure."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import attrs
import hypothesis
from hypothesis.stateful import run_state_machine_as_test

from bpf.definition.loader import load_process
from bpf.definition.model import ProcessDefinition
from bpf.runtime.engine import Engine
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

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else float("inf")

    def __str__(self) -> str:
        missed = "; ".join(
            f"{p}: {', '.join(s)}" for p, s in self.stages_missed.items() if s
        )
        return (
            f"{self.process}: {self.examples} examples, {self.steps} steps in "
            f"{self.seconds:.1f}s" + (f"; stages never entered: {missed}" if missed else "")
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
) -> CheckReport:
    """Property-test ``process`` (a YAML path or a `ProcessDefinition`) on real flows.

    Runs `FlowMachine` for ``max_examples`` random sequences of up to ``steps`` operations,
    with ``others`` (paths or definitions) running on the same records. ``store`` None or
    "memory" runs in memory; "sqlite" on a temporary file per example, also checking that a
    new engine sees the same state. ``engine_factory`` makes each engine (called with the
    store URL, or with None or nothing in memory). ``seed`` or ``derandomize`` make the run
    reproducible. ``settings`` (Hypothesis settings) replaces ``max_examples``, ``steps`` and
    ``derandomize``; ``seed`` still applies on top of it.

    Returns a `CheckReport`. On a violation raises `ProcessCheckFailed` (an AssertionError)
    whose message is the shrunk counterexample as readable steps and the property broken.
    """
    definition = _load(process)
    extra = [_load(p) for p in others]
    if settings is None:
        settings = default_settings(max_examples, steps)
        if derandomize:
            settings = hypothesis.settings(settings, derandomize=True)
    machine = FlowMachine(definition, others=extra, store=store, engine_factory=engine_factory,
                          settings=settings)
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
    return CheckReport(
        process=definition.process,
        examples=stats.examples,
        steps=stats.steps,
        seconds=seconds,
        stages_entered=entered,
        stages_missed=missed,
        results=dict(stats.results),
    )

