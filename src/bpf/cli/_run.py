"""``bpf run PROCESS SCENARIO.yaml``: play a scenario and print what each step did."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import bpf
from bpf._clock import utcnow
from bpf.cli._common import (
    CliError,
    database_url,
    is_process_file,
    load_definition,
    open_engine,
)
from bpf.cli._output import Progress, duration
from bpf.cli._scenario import REFUSED_FOR, Scenario, Step, read_scenario
from bpf.definition.model import ProcessDefinition

HELP = "play a scenario file (start, set, next, finish...) and print each outcome"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run", parents=parents, help=HELP,
        description="Play a scenario: records are started, filled in and moved through PROCESS "
        "by actors, step by step; each outcome is printed. The run stops at the first "
        "unexpected refusal (exit 1) unless --keep-going. The scenario format is in docs/cli.md.",
    )
    p.add_argument("process", metavar="PROCESS", help="a shipped process name or a YAML file")
    p.add_argument("scenario", metavar="SCENARIO.yaml", help="the scenario file")
    p.add_argument("--db", default="memory", metavar="URL",
                   help="where flows are kept: memory (default), sqlite:///file.db, a "
                   "PostgreSQL URL, or a path to an SQLite file")
    p.add_argument("--keep-going", action="store_true",
                   help="run every step, even after an unexpected refusal")
    p.set_defaults(handler=run)


class _Clock:
    """The scenario's time: starts early enough that its last ``wait`` ends now."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _definitions(main: ProcessDefinition, scenario: Scenario) -> dict[str, ProcessDefinition]:
    found = {main.process: main}
    for value in scenario.processes:
        if is_process_file(value) and not Path(value).is_absolute():
            value = str(scenario.path.parent / value)
        definition = load_definition(value)
        found[definition.process] = definition
    for step in scenario.steps:
        where = f"{scenario.path}:{step.line}: step {step.number} ({step.kind})"
        if step.process is not None and step.process not in found:
            raise CliError(f"{where}: process {step.process!r} is not in this run: "
                           f"{', '.join(found)}; add it to the scenario's `processes:`")
        if step.kind == "set_active":
            definition = found[step.process or main.process]
            if not definition.has_stage(step.args["stage"]):
                stages = ", ".join(s.id for s in definition.stages)
                raise CliError(f"{where}: {definition.process!r} has no stage "
                               f"{step.args['stage']!r}; stages: {stages}")
    return found


def run(args: argparse.Namespace) -> int:
    main = load_definition(args.process)
    scenario = read_scenario(Path(args.scenario))
    definitions = _definitions(main, scenario)
    url = database_url(args.db)
    clock = _Clock(utcnow() - scenario.total_wait)
    ran: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bpf.BpfWarning)
        engine = open_engine(url, definitions.values(), clock=clock,
                             on_action=lambda name, event: ran.append(name))
    with engine:
        print(f"scenario {scenario.path}: {len(scenario.steps)} steps on "
              + ", ".join(f"{d.process} v{d.version}" for d in definitions.values())
              + f" ({engine.store.url})")
        if scenario.description:
            print(f"  {scenario.description.strip()}")
        for w in caught:
            print(f"note: {w.message}")
        player = _Player(engine, scenario, main, clock, ran)
        failures = player.play(keep_going=args.keep_going)
    total = len(scenario.steps)
    if failures:
        played = player.played
        print(f"FAILED: {len(failures)} unexpected outcome{'s' if len(failures) > 1 else ''} "
              f"in {played} of {total} steps (step{'s' if len(failures) > 1 else ''} "
              f"{', '.join(str(s.number) for s in failures)})")
        if played < total:
            print(f"bpf: step {failures[0].number} ({scenario.path}:{failures[0].line}) did not "
                  "go as the scenario expects; stopped there. Mark an expected refusal with "
                  "`expect: refused` (or gate, denied), or run with --keep-going",
                  file=sys.stderr)
        return 1
    expected = player.expected_refusals
    print(f"passed: {total} steps"
          + (f", {expected} refusal{'s' if expected > 1 else ''} as expected" if expected
             else ""))
    if url is not None:
        print(f"flows saved in {engine.store.url}: try `bpf funnel --db {args.db} --process "
              f"{args.process}` or `bpf history --db {args.db} RECORD_ID`")
    return 0


class _Player:
    """Plays the steps of one scenario on one engine."""

    def __init__(self, engine: bpf.Engine, scenario: Scenario, main: ProcessDefinition,
                 clock: _Clock, ran: list[str]) -> None:
        self.engine = engine
        self.ran = ran
        self.scenario = scenario
        self.main = main
        self.clock = clock
        self.records: dict[str, dict[str, Any]] = {}
        #: each record's entity: the process it was started on, or the stage it was made for
        self.entities: dict[str, str] = {}
        self.actors = {name: bpf.Actor(name, roles) for name, roles in scenario.actors.items()}
        self.played = 0
        # The scenario owns its records: flows read back from a database bind them through
        # entity bindings, so a flow returning to an entity it left finds its record.
        for entity in sorted({e for d in engine.processes() for e in d.entities}):
            engine.entity(entity, load=self.records.get)
        self.several = len({d.process for d in engine.processes()}) > 1
        self.expected_refusals = 0
        steps = scenario.steps
        self.widths = (
            len(str(len(steps))),
            max(len(s.kind) for s in steps),
            max(len(s.record or "") for s in steps),
            max(len(s.actor or "") for s in steps),
        )

    def play(self, *, keep_going: bool) -> list[Step]:
        failures: list[Step] = []
        progress = Progress("step", len(self.scenario.steps))
        for step in self.scenario.steps:
            progress.update(step.number)
            self.ran.clear()
            outcome, ok = self.one(step)
            if self.ran and ok:
                outcome += f"; ran {', '.join(self.ran)}"
            progress.clear()
            self.played += 1
            self.print(step, outcome)
            if not ok:
                failures.append(step)
                if not keep_going:
                    break
        progress.done()
        return failures

    def print(self, step: Step, outcome: str) -> None:
        n, k, r, a = self.widths
        print(f"{step.number:>{n}}  {step.kind:<{k}}  {step.record or '':<{r}}  "
              f"{step.actor or '':<{a}}  {outcome}")

    def one(self, step: Step) -> tuple[str, bool]:
        """Play one step: (what happened, whether the scenario expected it)."""
        if step.kind == "wait":
            self.clock.now += step.wait
            return f"{duration(step.wait)} later", True
        if step.kind == "set":
            record = self.records[step.record]  # type: ignore[index]
            record.update(step.args["fields"])
            return ", ".join(f"{k} = {_value(v)}" for k, v in step.args["fields"].items()), True
        try:
            outcome = self.act(step)
        except bpf.FlowError as refusal:
            # The expectation that names the refusal's reason, as the scenario would write it.
            why = next((word for word, reason in REFUSED_FOR.items()
                        if reason == refusal.reason), "refused")
            message = str(refusal)
            if refusal.reason == bpf.Reason.ENTITY:
                message += " (in a scenario: add `create: {id: ...}` to the step)"
            expected = step.expect in ("refused", why)
            if expected:
                self.expected_refusals += 1
                return f"refused, as expected: {message}", True
            return f"REFUSED ({why}): {message}", False
        except bpf.BpfError as error:
            raise CliError(f"{self.scenario.path}:{step.line}: step {step.number} "
                           f"({step.kind}): {error}") from error
        if step.expect != "moved":
            return (f"{outcome} -- but the step expects a refusal (expect: {step.expect})",
                    False)
        return outcome, True

    def act(self, step: Step) -> str:
        process = step.process or self.main.process
        actor = self.actors.get(step.actor) if step.actor else None
        if step.kind == "start":
            if step.new_record is not None and step.record not in self.records:
                self.records[step.record] = dict(step.new_record)  # type: ignore[index]
            record = self.records[step.record]  # type: ignore[index]
            flow = self.engine.start(process, record, actor=actor)
            self.entities[step.record] = flow.stage.entity  # type: ignore[index]
            return f"started {process} at {flow.stage.name}" + self._phase(flow, record)
        record = self.records[step.record]  # type: ignore[index]
        flow = self.engine.flow(record, process, entity=self.entities.get(step.record))  # type: ignore[arg-type]
        before = flow.stage
        moves: dict[str, Callable[[], Any]] = {
            "previous": lambda: flow.previous(actor=actor),
            "set_active": lambda: flow.set_active(step.args["stage"], actor=actor),
            "finish": lambda: flow.finish(step.args.get("outcome"), actor=actor),
            "abandon": lambda: flow.abandon(actor=actor),
            "reactivate": lambda: flow.reactivate(actor=actor),
        }
        if step.kind == "next":
            created = None
            if step.new_record is not None:
                created = self.records.setdefault(str(step.new_record["id"]),
                                                  dict(step.new_record))
            flow.next(actor=actor, record=created)
            if created is not None:
                self.entities.setdefault(str(created["id"]), flow.stage.entity)
        else:
            moves[step.kind]()
        prefix = f"{process}: " if self.several else ""
        if step.kind == "finish":
            outcome = step.args.get("outcome")
            return prefix + f"finished at {flow.stage.name}" + (f" as {outcome}" if outcome
                                                                else "")
        if step.kind == "abandon":
            return prefix + f"abandoned at {flow.stage.name}"
        if step.kind == "reactivate":
            return prefix + f"reactivated at {flow.stage.name}"
        return prefix + f"{before.name} -> {flow.stage.name}" + self._phase(flow, flow.record)

    def _phase(self, flow: bpf.Flow, record: Any) -> str:
        field = flow.process.pipeline_field
        if field is None or not isinstance(record, dict):
            return f" ({flow.stage.phase})"
        return f" ({field} = {record.get(field)})"


def _value(value: Any) -> str:
    """A field value as the scenario's YAML would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
