"""``bpf diagram NAME|FILE``: the process graph as Mermaid or Graphviz dot, or rendered by dot.

Mermaid comes from transitions' own diagram support (`GraphMachine` with the mermaid engine): the
stages are its states and every branch a ``next`` transition whose condition is the branch's
condition as text. Graphviz text is written here, so it needs no Python binding; rendering it to
SVG, PNG or PDF runs Graphviz's ``dot`` program when it is installed.
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bpf.cli._common import CliError, load_definition
from bpf.definition.model import ProcessDefinition, Stage

HELP = "draw a process graph (mermaid or dot; -o x.svg renders through Graphviz)"

TEXT_SUFFIXES = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot"}
RENDERED_SUFFIXES = (".svg", ".png", ".pdf")

INSTALL_GRAPHVIZ = (
    "install Graphviz, which provides the `dot` program: `apt-get install graphviz` (Debian, "
    "Ubuntu), `brew install graphviz` (macOS), `conda install graphviz`, or "
    "https://graphviz.org/download/ (`pip install graphviz` alone is not enough: it is the Python "
    "binding and needs that program too); or write text instead, with -o FILE.mmd or -o FILE.dot"
)


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "diagram", parents=parents, help=HELP,
        description="Draw the stage graph of a process, branches labelled with their "
        "conditions. Prints Mermaid (default) or Graphviz dot; -o writes a file: .mmd and .dot "
        "as text, .svg, .png and .pdf rendered by Graphviz's dot program.",
    )
    p.add_argument("process", metavar="NAME|FILE", help="a shipped process name or a YAML file")
    p.add_argument("--format", choices=("mermaid", "dot"), default=None,
                   help="mermaid (default for text) or dot (used to render images)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE: .mmd/.dot text, or .svg/.png/.pdf rendered by Graphviz")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else None
    suffix = output.suffix.lower() if output else ""
    fmt = args.format or TEXT_SUFFIXES.get(suffix) or (
        "dot" if suffix in RENDERED_SUFFIXES else "mermaid"
    )
    if suffix in RENDERED_SUFFIXES and fmt != "dot":
        raise CliError(f"cannot render {fmt} to {suffix}: images are rendered from dot "
                       f"(leave out --format, or write -o {output.with_suffix('.mmd')})")
    dot = shutil.which("dot") if suffix in RENDERED_SUFFIXES else None
    if suffix in RENDERED_SUFFIXES and dot is None:
        # Check before loading, so the message is the same whatever the process.
        raise CliError(f"cannot render {output}: Graphviz is not installed; {INSTALL_GRAPHVIZ}")
    definition = load_definition(args.process)
    text = mermaid(definition) if fmt == "mermaid" else graphviz(definition)
    if output is None:
        sys.stdout.write(text)
    elif dot is not None:
        render(text, dot, output)
        print(f"wrote {output}")
    else:
        output.write_text(text, encoding="utf-8")
        print(f"wrote {output}")
    return 0


# -- labels -----------------------------------------------------------------------------------

def stage_label(stage: Stage) -> str:
    """``Qualify (1-Qualify, 10%)``: the stage name, its phase and probability."""
    facts = [stage.phase] if stage.phase != stage.name else []
    if stage.probability is not None:
        facts.append(f"{stage.probability:g}%")
    return stage.name + (f" ({', '.join(facts)})" if facts else "")


def _branch_labels(definition: ProcessDefinition, stage: Stage) -> list[tuple[str, str | None]]:
    """(target, condition text) per branch; None for the single unconditional successor."""
    branches = definition.branches(stage.id)
    if len(branches) == 1 and branches[0].when is None:
        return [(branches[0].stage, None)]
    return [(b.stage, str(b.when) if b.when is not None else "else") for b in branches]


def _finish_label(definition: ProcessDefinition) -> str:
    return "finish" + (f" ({', '.join(definition.outcomes)})" if definition.outcomes else "")


# -- mermaid, through transitions ---------------------------------------------------------------

@functools.cache
def _diagram_machine() -> type:
    """transitions' GraphMachine with states and transitions that carry a label to draw.

    Built on first use: the diagrams extension imports transitions' asyncio support too,
    which every other ``bpf`` command would pay for at start-up.
    """
    from transitions import State
    from transitions.extensions.diagrams import GraphMachine, TransitionGraphSupport

    class _Stage(State):
        def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.label = label

    class _Branch(TransitionGraphSupport):
        def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.label = label

    class _DiagramMachine(GraphMachine):
        state_cls = _Stage
        transition_cls = _Branch

    return _DiagramMachine


_SAFE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _ids(definition: ProcessDefinition) -> dict[str, str]:
    """Stage id -> an id Mermaid accepts (``s3`` for ids with dashes, dots...)."""
    return {s.id: s.id if _SAFE_ID.match(s.id) else f"s{i}"
            for i, s in enumerate(definition.stages, 1)}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")


def mermaid(definition: ProcessDefinition) -> str:
    """The process as a Mermaid state diagram, drawn by transitions' mermaid engine."""
    ids = _ids(definition)
    machine = _diagram_machine()(
        states=[{"name": ids[s.id], "label": _mermaid_text(stage_label(s))}
                for s in definition.stages],
        initial=ids[definition.first_stage.id],
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title=f'title: "{_mermaid_text(definition.name)}"',
    )
    finishing = []
    for stage in definition.stages:
        for target, condition in _branch_labels(definition, stage):
            machine.add_transition(
                "next", ids[stage.id], ids[target],
                conditions=[_mermaid_text(condition)] if condition else None,
                label="next",
            )
        if definition.is_last(stage.id):
            finishing.append(ids[stage.id])
    graph = machine.model_graphs[id(machine)]
    graph.reset_styling()  # the machine "is" in its first state: draw no stage as active
    text = graph.get_graph().source
    ends = [f"  {stage} --> [*]: {_finish_label(definition)}" for stage in finishing]
    return "\n".join([text.rstrip("\n"), *ends]) + "\n"


# -- graphviz dot, written here ----------------------------------------------------------------

def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graphviz(definition: ProcessDefinition) -> str:
    """The process as a Graphviz digraph: one box per stage, grouped by entity when it spans
    several, an edge per branch labelled with its condition."""
    d = definition
    lines = [
        f"digraph {_dot(d.process)} {{",
        "  rankdir=LR;",
        f"  label={_dot(f'{d.process} v{d.version}: {d.name}')}; labelloc=t; fontsize=16;",
        '  fontname="Helvetica";',
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        '  "__start" [shape=circle, label="", width=0.2, style=filled, fillcolor=black];',
        '  "__end" [shape=doublecircle, label="", width=0.2, style=filled, fillcolor=black];',
    ]

    def node(stage: Stage) -> str:
        label = stage.name + "\n" + ", ".join(
            x for x in (stage.phase if stage.phase != stage.name else "",
                        f"{stage.probability:g}%" if stage.probability is not None
                        else "") if x)
        required = len(stage.required_steps)
        if required:
            label += f"\n{required} required step{'s' if required > 1 else ''}"
        return f"{_dot(stage.id)} [label={_dot(label.strip())}];"

    if len(d.entities) > 1:
        for i, entity in enumerate(d.entities):
            lines.append(f"  subgraph cluster_{i} {{")
            lines.append(f"    label={_dot(entity)}; style=dashed;")
            lines.extend(f"    {node(s)}" for s in d.stages if s.entity == entity)
            lines.append("  }")
    else:
        lines.extend(f"  {node(s)}" for s in d.stages)
    lines.append(f'  "__start" -> {_dot(d.first_stage.id)};')
    for stage in d.stages:
        for target, condition in _branch_labels(d, stage):
            attrs = f" [label={_dot(condition)}]" if condition else ""
            lines.append(f"  {_dot(stage.id)} -> {_dot(target)}{attrs};")
        if d.is_last(stage.id):
            lines.append(f'  {_dot(stage.id)} -> "__end" [label={_dot(_finish_label(d))}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(text: str, dot: str, output: Path) -> None:
    """Render dot text to ``output`` (its suffix picks the image format) with Graphviz."""
    fmt = output.suffix.lower().lstrip(".")
    try:
        done = subprocess.run([dot, f"-T{fmt}", "-o", str(output)], input=text.encode(),
                              capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CliError(f"cannot run Graphviz ({dot}): {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise CliError(f"Graphviz could not render {output}: "
                       f"{message[0] if message else f'dot exited with {done.returncode}'}")
