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
import yaml

from bpf._errors import Reason
from bpf.cli._common import CliError

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
    """Read and check a scenario file; `CliError` with ``file:line`` on the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not a text file ({exc.reason})") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            # The top-level (key, value) nodes as written: constructing the data flattens merge
            # keys (`<<`) in the node tree in place.
            pairs = list(root.value) if isinstance(root, yaml.MappingNode) else []
            data = None if root is None else loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CliError(f"{where}: not valid YAML: {problem}") from None

    def fail(line: int, message: str) -> CliError:
        return CliError(f"{path}:{line}: {message}")

    if not isinstance(data, dict):
        raise fail(1, "a scenario is a mapping with `steps:` (and `actors:`, `processes:`)")
    lines = _key_lines(pairs)
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise fail(lines.get(unknown[0], 1), f"unknown key {unknown[0]!r}; a scenario has "
                   f"{', '.join(sorted(TOP_KEYS))}")
    actors = data.get("actors") or {}
    if not isinstance(actors, dict):
        raise fail(lines.get("actors", 1), "`actors` maps each actor's name to their roles")
    actor_roles: dict[str, tuple[str, ...]] = {}
    for name, roles in actors.items():
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise fail(lines.get("actors", 1), f"actor {name!r}: give a list of role names")
        actor_roles[str(name)] = tuple(roles)
    processes = data.get("processes") or []
    if not isinstance(processes, list) or not all(isinstance(p, str) for p in processes):
        raise fail(lines.get("processes", 1), "`processes` lists process names or files")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise fail(lines.get("steps", 1), "`steps` is a list of steps (start, set, next...)")
    step_lines = _item_lines(pairs, "steps")
    steps = []
    known: set[str] = set()
    for number, (raw, line) in enumerate(zip(raw_steps, step_lines, strict=True), 1):
        steps.append(_step(number, line, raw, known, actor_roles, fail))
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
        if not body or not all(isinstance(v, (int, float)) and v >= 0 for v in body.values()):
            raise fail(line, f"{where}: give how long, e.g. `wait: {{days: 3}}`")
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


def _key_lines(pairs: list[tuple[Any, Any]]) -> dict[Any, int]:
    return {k.value: k.start_mark.line + 1 for k, _ in pairs}


def _item_lines(pairs: list[tuple[Any, Any]], key: str) -> list[int]:
    for k, v in pairs:
        if k.value == key and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []
