"""Scenario files: what a salesperson (or several) does to records, step by step, in YAML.

A scenario is read and checked whole before its first step runs, so a typo is reported with its
``file:line`` and nothing has moved. docs/cli.md documents the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from bpf._errors import DefinitionError, Reason
from bpf.cli._common import CliError
from bpf.definition._yaml import Kind, read_yaml
from bpf.definition._yaml_source import read_file

#: Step kinds, and the keys each accepts besides ``record``, ``actor``, ``process``, ``expect``.
KINDS: dict[str, frozenset[str]] = {
    "start": frozenset(),
    "set": frozenset({"fields"}),
    "next": frozenset({"create"}),
    "previous": frozenset(),
    "set_active": frozenset({"stage"}),
    "finish": frozenset({"outcome"}),
    "abandon": frozenset(),
    "reactivate": frozenset(),
    "wait": frozenset({"days", "hours", "minutes"}),
}
COMMON_KEYS = frozenset({"record", "actor", "process", "expect"})
#: What a step may expect: it moves (the default), or is refused for any reason, or for the
#: refusal reason (`bpf.Reason`) an expectation names: the gate, or the lack of a role.
REFUSED_FOR: dict[str, Reason] = {"gate": Reason.GATE, "denied": Reason.ROLE}
EXPECTATIONS = ("moved", "refused", *REFUSED_FOR)
TOP_KEYS = frozenset({"description", "processes", "actors", "steps"})
#: The longest a scenario may wait in all: its clock starts that long before now.
MAX_WAIT = timedelta(days=36_500)

#: What a scenario file is, for the words of the YAML reader's problems.
SCENARIO = Kind(
    "a scenario", "a scenario file", "a mapping with `steps:` (and `actors:`, `processes:`)",
    "write the keys out",
)


@attrs.frozen
class Step:
    """One step of a scenario, where it was written, and what it expects."""

    number: int
    line: int
    kind: str
    record: str | None
    actor: str | None
    process: str | None
    expect: str
    args: Mapping[str, Any]
    #: For ``start`` with a record mapping and ``next`` with ``create``: the new record's fields.
    new_record: Mapping[str, Any] | None = None

    @property
    def wait(self) -> timedelta:
        return timedelta(days=self.args.get("days", 0), hours=self.args.get("hours", 0),
                         minutes=self.args.get("minutes", 0))


@attrs.frozen
class Scenario:
    path: Path
    description: str | None
    processes: tuple[str, ...]
    actors: Mapping[str, tuple[str, ...]]
    steps: tuple[Step, ...]

    @property
    def total_wait(self) -> timedelta:
        return sum((s.wait for s in self.steps if s.kind == "wait"), timedelta(0))


def read_scenario(path: Path) -> Scenario:
    """Read and check a scenario file; `CliError` with ``file:line`` on the first problem.

    The file is read as process files are (`bpf.definition._yaml`): a regular file only, at
    most 1 MiB, with aliases, nesting and values counted, so a hostile file is refused quickly
    and in little memory.
    """
    if not path.exists() and not path.is_symlink():
        raise CliError(f"{path}: no such file")
    try:
        document = read_yaml(read_file(path, str(path)), str(path), SCENARIO)
    except DefinitionError as error:
        raise CliError(str(error.problems[0])) from None
    if document.problems:
        raise CliError(str(document.problems[0]))
    data = document.data

    def fail(line: int, message: str) -> CliError:
        return CliError(f"{path}:{line}: {message}")

    if not isinstance(data, dict):
        raise fail(1, "a scenario is a mapping with `steps:` (and `actors:`, `processes:`)")

    def line_of(key: str) -> int:
        return document.keys.get((key,), (1, 1))[0]

    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise fail(line_of(unknown[0]), f"unknown key {unknown[0]!r}; a scenario has "
                   f"{', '.join(sorted(TOP_KEYS))}")
    actors = data.get("actors") or {}
    if not isinstance(actors, dict):
        raise fail(line_of("actors"), "`actors` maps each actor's name to their roles")
    actor_roles: dict[str, tuple[str, ...]] = {}
    for name, roles in actors.items():
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise fail(line_of("actors"), f"actor {name!r}: give a list of role names")
        actor_roles[str(name)] = tuple(roles)
    processes = data.get("processes") or []
    if not isinstance(processes, list) or not all(isinstance(p, str) for p in processes):
        raise fail(line_of("processes"), "`processes` lists process names or files")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise fail(line_of("steps"), "`steps` is a list of steps (start, set, next...)")
    steps = []
    known: set[str] = set()
    waited = timedelta(0)
    for number, raw in enumerate(raw_steps, 1):
        line = document.values[("steps", number - 1)][0]
        step = _step(number, line, raw, known, actor_roles, fail)
        if step.kind == "wait":
            waited += step.wait  # each wait is at most MAX_WAIT: the sum cannot overflow
            if waited > MAX_WAIT:
                raise fail(line, f"step {number} (wait): the scenario waits more than "
                           f"{MAX_WAIT.days:,} days in all (its clock starts that long ago)")
        steps.append(step)
    return Scenario(path, data.get("description"), tuple(processes), actor_roles, tuple(steps))


def _step(number: int, line: int, raw: Any, known: set[str],
          actors: Mapping[str, tuple[str, ...]], fail: Any) -> Step:
    kinds = ", ".join(KINDS)
    if not isinstance(raw, dict) or len(raw) != 1:
        raise fail(line, f"step {number}: write one step per item, e.g. `- next: {{record: "
                   f"opp-1, actor: alice}}`; steps: {kinds}")
    ((kind, body),) = raw.items()
    if kind not in KINDS:
        raise fail(line, f"step {number}: unknown step {kind!r}; steps: {kinds}")
    if kind == "wait" and isinstance(body, (int, float)):
        body = {"days": body}
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise fail(line, f"step {number} ({kind}): give a mapping, e.g. "
                   f"`{kind}: {{record: opp-1}}`")
    where = f"step {number} ({kind})"
    allowed = KINDS[kind] | (frozenset() if kind == "wait" else COMMON_KEYS)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise fail(line, f"{where}: unknown key {unknown[0]!r}; {kind} takes "
                   f"{', '.join(sorted(allowed))}")
    if kind == "wait":
        # Finite, and each part no more than the scenario's whole span: adding up cannot
        # overflow.
        if not body or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               and 0 <= v <= MAX_WAIT.days for v in body.values()):
            raise fail(line, f"{where}: give how long, e.g. `wait: {{days: 3}}` (at most "
                       f"{MAX_WAIT.days:,} days in all)")
        return Step(number, line, kind, None, None, None, "moved", body)

    record = body.get("record")
    new_record = None
    if kind == "start" and isinstance(record, dict):
        if record.get("id") in (None, ""):
            raise fail(line, f"{where}: the new record needs an `id`")
        new_record = record
        record = str(record["id"])
    elif isinstance(record, (str, int)) and not isinstance(record, bool):
        record = str(record)
        if record not in known:
            hint = (" (start it with `record: {id: ..., ...}` to create it)"
                    if kind == "start" else "")
            raise fail(line, f"{where}: no record {record!r} yet{hint}; records so far: "
                       f"{', '.join(sorted(known)) or 'none'}")
    else:
        raise fail(line, f"{where}: `record` names the record (its id)"
                   + (", or gives a new one: `record: {id: opp-1, ...}`" if kind == "start"
                      else ""))
    known.add(record)
    if kind == "next" and "create" in body:
        created = body["create"]
        if not isinstance(created, dict) or created.get("id") in (None, ""):
            raise fail(line, f"{where}: `create` gives the new record, with an `id`")
        new_record = created
        known.add(str(created["id"]))
    actor = body.get("actor")
    if actor is not None:
        actor = str(actor)
        if actor not in actors:
            raise fail(line, f"{where}: unknown actor {actor!r}; `actors:` has "
                       f"{', '.join(actors) or 'none'}")
    expect = body.get("expect", "moved")
    if expect not in EXPECTATIONS:
        raise fail(line, f"{where}: `expect` is one of {', '.join(EXPECTATIONS)}")
    if kind == "set" and (not isinstance(body.get("fields"), dict) or not body["fields"]):
        raise fail(line, f"{where}: `fields` maps field names to values")
    if kind == "set_active" and not isinstance(body.get("stage"), str):
        raise fail(line, f"{where}: `stage` names the stage to return to")
    process = body.get("process")
    return Step(number, line, kind, record, actor, None if process is None else str(process),
                expect, body, new_record)
