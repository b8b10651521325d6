"""`FlowMachine`: the state machine class for given processes, with the strategies drawn from
their definitions, and the Hypothesis settings the kit runs with.

The class is built per set of definitions: its rules (`bpf.testing._rules`) draw from
strategies computed once here, and its `Stats` add up what every example of it exercised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from bpf.definition.model import ProcessDefinition
from bpf.runtime.engine import Engine
from bpf.runtime.flow import Actor
from bpf.testing._driver import Stats
from bpf.testing._engines import is_postgres
from bpf.testing._expected import Refuses
from bpf.testing._rules import FlowRules
from bpf.testing._strategies import (
    actor_pool,
    condition_constants,
    entity_fields,
    usable_witnesses,
)
from bpf.testing._world import allowed


def FlowMachine(
    definition: ProcessDefinition,
    *,
    others: Iterable[ProcessDefinition] = (),
    store: str | None = None,
    engine_factory: Callable[..., Engine] | None = None,
    max_records: int = 3,
    settings: Settings | None = None,
    expect_refusals: Iterable[Refuses] = (),
    invariants: Iterable[Callable[[Any], None]] = (),
) -> type[RuleBasedStateMachine]:
    """A `hypothesis.stateful.RuleBasedStateMachine` driving real flows of ``definition``.

    It starts flows on up to ``max_records`` records, ``others`` (more definitions) on the same
    records, moves, finishes, abandons and reactivates them as actors that do and do not hold
    the roles, edits fields, and after every step checks the flows against the definition
    (the names and sentences are in ``bpf.testing.PROPERTIES``). A violation raises
    `ProcessCheckFailed` listing the steps.

    ``store`` is None or "memory", "sqlite" (a temporary file per example) or a PostgreSQL URL
    (a schema of its own per example); on a database the machine also reopens the store in a
    new engine and compares. ``engine_factory`` makes the engine (called with the store URL,
    or with None or nothing for memory); default `bpf.Engine`. ``expect_refusals``: what your
    engine's hooks refuse on purpose (`Refuses`). ``invariants``: functions of the machine
    (``self.engine``, ``self.records``, ``self.flows``...) that raise AssertionError when
    something is wrong, called after every step.

    Run it with ``hypothesis.stateful.run_state_machine_as_test`` or as a unittest
    ``FlowMachine(d).TestCase``; `check_process` does both the running and the reporting.
    """
    definitions = (definition, *others)
    for d in definitions:
        if not isinstance(d, ProcessDefinition):
            raise TypeError(f"FlowMachine takes ProcessDefinitions, got {type(d).__name__}")
    names = [d.process for d in definitions]
    if len(set(names)) != len(names):
        raise ValueError(f"each process may be given once: {', '.join(names)}")
    if store not in (None, "memory", "sqlite") and not is_postgres(store):
        raise ValueError(f"store is None, 'memory', 'sqlite' or a PostgreSQL URL, not {store!r}")
    if max_records < 1:
        raise ValueError("max_records must be at least 1")
    entities = dict.fromkeys(e for d in definitions for e in d.entities)
    pipeline_fields = frozenset(d.pipeline_field for d in definitions if d.pipeline_field)
    fields = {e: entity_fields(definitions, e) for e in entities}
    namespace = {
        "definitions": definitions,
        "store_kind": store or "memory",
        "engine_factory": staticmethod(engine_factory) if engine_factory else None,
        "max_records": max_records,
        "stats": Stats(),
        "expected": tuple(expect_refusals),
        "user_invariants": tuple(invariants),
        "_fields": fields,
        "_actors": _actor_strategy(definitions),
        "_actor_order": actor_pool(definitions),
        "_step_of": {
            step.field: step for d in reversed(definitions) for stage in reversed(d.stages)
            for step in stage.steps
        },
        "_constants": _all_constants(definitions),
        "_edit_order": {e: _edit_order(definitions, e, f) for e, f in fields.items()},
        "_some_fields": {
            e: st.lists(st.sampled_from(sorted(f)), max_size=3, unique=True)
            for e, f in fields.items() if f
        },
        "_witnesses": usable_witnesses(definitions),
        "_start_entities": tuple(dict.fromkeys(d.first_stage.entity for d in definitions)),
        "_pipeline_fields": pipeline_fields,
        "__doc__": f"Drives flows of {', '.join(names)} and checks them after every step.",
    }
    cls = type(f"FlowMachine_{definition.process.replace('-', '_')}", (FlowRules,),
               namespace)
    cls.TestCase.settings = settings or default_settings(shrink=True)
    return cls


def _actor_strategy(definitions: Sequence[ProcessDefinition]) -> st.SearchStrategy[Actor | None]:
    """Mostly actors holding a role (flows get somewhere), sometimes others (roles enforced);
    shrinks to the first role holder."""
    holders: list[Actor | None] = []
    others: list[Actor | None] = []
    for actor in actor_pool(definitions):
        if actor is not None and any(allowed(d, actor) for d in definitions):
            holders.append(actor)
        else:
            others.append(actor)
    # Four in five draws a role holder, however many roles and other actors there are.
    copies = max(1, -(-4 * len(others) // max(len(holders), 1)))
    return st.sampled_from(holders * copies + others)


def _all_constants(definitions: Sequence[ProcessDefinition]) -> dict[str, list[Any]]:
    """The constants branch conditions compare fields with, for the fields steps collect (no
    user types into another field: the kit does not either)."""
    collected = {s.field for d in definitions for st_ in d.stages for s in st_.steps}
    found: dict[str, list[Any]] = {}
    for definition in definitions:
        for field, values in condition_constants(definition).items():
            if field not in collected:
                continue
            known = found.setdefault(field, [])
            known.extend(v for v in values if v not in known)
    return found


def _edit_order(
    definitions: Sequence[ProcessDefinition], entity: str, fields: Mapping[str, Any]
) -> list[str]:
    """The fields edits choose from: those branch conditions read three times over (so that
    branches get taken), then the others."""
    read = {f for d in definitions for f in condition_constants(d, entity)} & set(fields)
    return sorted(read) * 3 + sorted(set(fields) - read)


def default_settings(max_examples: int = 100, steps: int = 30, *, shrink: bool = False
                     ) -> Settings:
    """The Hypothesis settings the kit runs with: no deadline, no example database, and no
    shrinking unless ``shrink`` (`check_process` minimizes failures itself)."""
    from hypothesis import HealthCheck, Phase, Verbosity

    # No explain phase ever: it re-runs a failure hundreds of times to annotate Hypothesis's
    # own printout, which the readable steps replace. No shrink phase under check_process:
    # `minimize` cuts a failure down by replaying operations in a fraction of a second, where
    # Hypothesis's shrinker (working on its own choices, not on operations) takes seconds and
    # leaves steps behind.
    # No target phase: its hill climbing doubled a run's time for no stage, branch or outcome
    # more (the rules steer towards those themselves; see bpf.testing._rules).
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if shrink:
        phases.append(Phase.shrink)
    return Settings(
        phases=phases,
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
    )
