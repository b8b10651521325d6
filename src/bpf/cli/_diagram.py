"""``bpf diagram NAME|FILE``: the process graph as Mermaid or Graphviz dot, or rendered by dot.

Both are drawn by transitions' own diagram support: one `GraphMachine` built from the definition
(`bpf.interop.transitions.graph_machine`), whose states are the stages and whose ``next``
transitions are the branches, each showing its condition, drawn by its mermaid or its graphviz
engine (the latter writes dot text through the ``graphviz`` package). Rendering dot to SVG, PNG or
PDF runs Graphviz's ``dot`` program when it is installed.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bpf.cli._common import CliError, load_definition
from bpf.definition.model import ProcessDefinition

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


# -- drawn by transitions' GraphMachine -------------------------------------------------------
# One builder, `bpf.interop.transitions.graph_machine`, gives both engines the same graph: the
# stages are its states and every branch a gated ``next`` transition showing its condition.

def _finish_label(definition: ProcessDefinition) -> str:
    return "finish" + (f" ({', '.join(definition.outcomes)})" if definition.outcomes else "")


def mermaid(definition: ProcessDefinition) -> str:
    """The process as a Mermaid state diagram, drawn by transitions' mermaid engine."""
    from bpf.interop.transitions import graph_machine  # on use: other commands never draw

    machine = graph_machine(definition, "mermaid")
    text = machine.graph_cls(machine).get_graph().source
    names = {s.id: n for s, n in zip(definition.stages, machine.states, strict=True)}
    ends = [f"  {names[s.id]} --> [*]: {_finish_label(definition)}"
            for s in definition.stages if definition.is_last(s.id)]
    return "\n".join([text.rstrip("\n"), *ends]) + "\n"


def graphviz(definition: ProcessDefinition) -> str:
    """The process as a Graphviz digraph, drawn by transitions' graphviz engine: a box per
    stage, grouped by entity when it spans several, an edge per branch showing its condition."""
    from bpf.interop.transitions import graph_machine

    try:
        machine = graph_machine(definition, "graphviz")
    except ImportError as exc:
        raise CliError("dot output needs the Python package graphviz, a dependency of bpf: "
                       f"pip install graphviz ({exc})") from exc
    return _process_graph()(machine, definition).get_graph().source


@functools.cache
def _process_graph() -> type:
    """transitions' graphviz graph, with what a process diagram adds: entity clusters, the
    required steps of each stage, a start and an end."""
    from transitions.extensions.diagrams_graphviz import Graph

    class ProcessGraph(Graph):  # type: ignore[misc]
        def __init__(self, machine: Any, definition: ProcessDefinition) -> None:
            self.definition = definition
            super().__init__(machine)

        def _convert_state_attributes(self, state: dict[str, Any]) -> str:
            required = len(self.definition.stage(state["name"]).required_steps)
            label = super()._convert_state_attributes(state)
            if required:
                label += f"{required} required step{'s' if required > 1 else ''}\\l"
            return label

        def _add_nodes(self, states: list[dict[str, Any]], container: Any) -> None:
            d = self.definition
            if len(d.entities) == 1:
                super()._add_nodes(states, container)
                return
            for i, entity in enumerate(d.entities):
                with container.subgraph(name=f"cluster_{i}") as cluster:
                    cluster.attr(label=entity, style="dashed")
                    super()._add_nodes(
                        [s for s in states if d.stage(s["name"]).entity == entity], cluster)

        def get_graph(self, title: str | None = None, roi_state: Any = None) -> Any:
            d = self.definition
            graph = super().get_graph(title, roi_state)
            graph.name = d.process
            graph.attr(labelloc="t")  # the title above the graph, as Mermaid puts it
            graph.node("__start", label="", shape="circle", width="0.2", style="filled",
                       fillcolor="black")
            graph.node("__end", label="", shape="doublecircle", width="0.2", style="filled",
                       fillcolor="black")
            graph.edge("__start", d.first_stage.id)
            for stage in d.stages:
                if d.is_last(stage.id):
                    graph.edge(stage.id, "__end", label=_finish_label(d))
            return graph

    return ProcessGraph


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
