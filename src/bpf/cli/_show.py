"""``bpf show NAME|FILE``: a process as readable tables: its stages, their steps, its branches."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from bpf.cli._common import load_definition
from bpf.cli._output import probability, table
from bpf.definition.model import ProcessDefinition, Stage

WIDTH = 96

HELP = "show a process: stages, steps (required marked), branches and their conditions"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "show", parents=parents, help=HELP,
        description="Show a process: its stages with category, pipeline phase and probability, "
        "each stage's steps (required ones marked) and where the flow goes next, with the "
        "branch conditions. NAME is a shipped process (opportunity-sales...), FILE a YAML file.",
    )
    p.add_argument("process", metavar="NAME|FILE", help="a shipped process name or a YAML file")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(render(load_definition(args.process)))
    return 0


def actions_text(stage: Stage) -> str:
    """The stage's actions by when they run: ``on_enter: a; after_enter: mail`` (on_* inside
    the change, after_* once it committed)."""
    return "; ".join(
        f"{when}: {', '.join(names)}"
        for when, names in (("on_enter", stage.on_enter), ("on_exit", stage.on_exit),
                            ("after_enter", stage.after_enter), ("after_exit", stage.after_exit))
        if names
    )


def next_text(definition: ProcessDefinition, stage: Stage) -> str:
    """Where a flow goes after ``stage``: ``develop``, or ``fast if x > 1; else develop``."""
    branches = definition.branches(stage.id)
    if not branches:
        outcomes = ", ".join(definition.outcomes)
        return "finish" + (f" ({outcomes})" if outcomes else "")
    if len(branches) == 1 and branches[0].when is None:
        return branches[0].stage
    parts = [
        f"{b.stage} if {b.when}" if b.when is not None else f"else {b.stage}" for b in branches
    ]
    return "; ".join(parts)


def render(definition: ProcessDefinition) -> str:
    d = definition
    lines = [f"{d.process} v{d.version}: {d.name}"]
    if d.description:
        lines.append(textwrap.fill(" ".join(d.description.split()), WIDTH))
    facts = [f"entity {', '.join(d.entities)}"]
    facts.append(f"pipeline field {d.pipeline_field}" if d.pipeline_field else
                 "no pipeline field")
    if d.roles:
        facts.append(f"roles {', '.join(d.roles)}")
    if d.outcomes:
        facts.append(f"outcomes {', '.join(d.outcomes)}")
    lines.append(" · ".join(facts))
    lines.append("")

    several_entities = len(d.entities) > 1
    headers = ["#", "STAGE", "ID"]
    if several_entities:
        headers.append("ENTITY")
    headers += ["CATEGORY", "PHASE", "PROB", "STEPS", "NEXT"]
    rows = []
    for i, stage in enumerate(d.stages, 1):
        row: list[Any] = [i, stage.name, stage.id]
        if several_entities:
            row.append(stage.entity)
        required = len(stage.required_steps)
        steps = f"{len(stage.steps)}" + (f" ({required} required)" if required else "")
        row += [stage.category or "-", stage.phase, probability(stage.probability), steps,
                next_text(d, stage)]
        rows.append(row)
    prob = headers.index("PROB")
    lines.append(table(headers, rows, right=(0, prob)))

    for i, stage in enumerate(d.stages, 1):
        lines.append("")
        title = f"{i}. {stage.name} [{stage.id}]"
        if several_entities:
            title += f" on {stage.entity}"
        lines.append(title)
        if stage.guidance:
            lines.append(textwrap.fill(" ".join(stage.guidance.split()), WIDTH,
                                       initial_indent="   ", subsequent_indent="   "))
        if stage.steps:
            rows = [
                ["*" if s.required else "", s.label, s.field,
                 s.type + (f" ({', '.join(map(str, s.choices))})" if s.choices else "")]
                for s in stage.steps
            ]
            lines.append(table(["", "STEP", "FIELD", "TYPE"], rows, indent="  "))
        else:
            lines.append("   no steps")
        lines.append(f"   next: {next_text(d, stage)}")
        actions = actions_text(stage)
        if actions:
            lines.append(f"   actions: {actions}")
    if any(s.required_steps for s in d.stages):
        lines.append("")
        lines.append("* required: the flow cannot leave the stage until it is filled in")
    return "\n".join(lines)
