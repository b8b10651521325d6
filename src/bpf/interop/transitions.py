"""A bpf process as a `transitions` state machine: drive your own models by it, or draw it.

`machine` gives users of the transitions library a `transitions.Machine` built from a
`bpf.ProcessDefinition`: its states are the stage ids, and its two triggers move a model the way
bpf's engine moves a flow:

- ``model.next()`` leaves the current stage only when every required step of it is filled
  (`bpf.Step.is_satisfied`, the one gate rule), for the first branch whose condition holds, else
  the default branch (`ProcessDefinition.branches`, the one branch rule);
- ``model.previous()`` goes back one stage along the path the model took, kept on the model as
  ``model.bpf_path`` (a tuple of stage ids, the current stage last).

Fields are read as bpf reads a record: the keys of a mapping model (a ``dict`` subclass, say),
the attributes of any other object; a missing field reads as None. transitions keeps the state
and the triggers as attributes, so a model must take attributes (a plain ``dict`` does not; a
subclass does), and it tells models apart with ``==``: two dict-like models with equal contents
count as one unless their class compares by identity.

Refusals come the transitions way, and say what bpf's engine would:

- ``next()`` **returns False** while a required step is not filled (bpf: `StageGateError`);
- ``next()`` at a stage nothing follows and ``previous()`` at the first stage **raise
  `transitions.MachineError`**, as any trigger with no transition from the current state does
  (bpf: `TransitionError`, reasons ``end`` and ``beginning``; at a last stage bpf reports an
  unfilled gate first). With ``ignore_invalid_triggers=True`` they return False instead.

This is the stage graph only: bpf's engine also writes the pipeline field, keeps the history,
runs stage actions, checks roles, status and entities, and stores the flow. Use the engine for
that; use this to put a bpf process on objects that already live in a transitions world.

`graph_machine` builds the same states and ``next`` transitions as a transitions `GraphMachine`
for drawing; ``bpf diagram`` draws with it, in Mermaid and in Graphviz.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from transitions import Machine, State, Transition
from transitions.core import Condition

from bpf.definition.model import ProcessDefinition, Stage, Step
from bpf.runtime.compiled import check_graph
from bpf.runtime.records import field_getter

if TYPE_CHECKING:
    from transitions.extensions.diagrams import GraphMachine

__all__ = ["PATH_ATTRIBUTE", "graph_machine", "machine"]

#: The model attribute holding the stage ids the model went through, the current one last.
PATH_ATTRIBUTE = "bpf_path"

# Machine arguments `machine` decides: the states and moves are the definition's, and an
# automatic ``to_<stage>`` trigger would jump without the gate and without keeping the path.
_RESERVED = frozenset({"states", "transitions", "initial", "auto_transitions"})


# -- the tests bpf puts on transitions ----------------------------------------------------------

class _Test:
    """A test on the model that a `_Check` calls with the model itself, whatever the machine's
    ``send_event``; its ``str`` is what a diagram shows (nothing, when empty)."""

    __slots__ = ()

    def __call__(self, model: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class _Gate(_Test):
    """Every required step of the stage is filled: the gate of ``next``."""

    __slots__ = ("required",)

    def __init__(self, required: tuple[Step, ...]) -> None:
        self.required = required

    def __call__(self, model: Any) -> bool:
        get = field_getter(model)
        return all(step.is_satisfied(get(step.field)) for step in self.required)

    def __str__(self) -> str:
        return ""  # the gate is on every move out of the stage: drawn on none


class _When(_Test):
    """A branch's condition holds (None: the default branch, which always does)."""

    __slots__ = ("evaluate", "text")

    def __init__(self, evaluate: Callable[[Callable[[str], Any]], bool] | None, text: str) -> None:
        self.evaluate = evaluate
        self.text = text

    def __call__(self, model: Any) -> bool:
        return self.evaluate is None or bool(self.evaluate(field_getter(model)))

    def __str__(self) -> str:
        return self.text


class _CameFrom(_Test):
    """The model entered its current stage from ``stage``: where ``previous`` goes back to."""

    __slots__ = ("stage",)

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def __call__(self, model: Any) -> bool:
        path = getattr(model, PATH_ATTRIBUTE, ())
        return len(path) >= 2 and path[-2] == self.stage

    def __str__(self) -> str:
        return f"came from {self.stage}"


class _Check(Condition):
    """transitions' condition, calling bpf's tests with the model (others as transitions does)."""

    def check(self, event_data: Any) -> bool:
        if isinstance(self.func, _Test):
            return self.func(event_data.model) == self.target
        return bool(super().check(event_data))


class _Move(Transition):
    """A transition that keeps the model's path: ``next`` appends the stage entered,
    ``previous`` drops the stage left."""

    condition_cls = _Check

    def __init__(self, *args: Any, bpf_move: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bpf_move = bpf_move

    def _change_state(self, event_data: Any) -> None:
        model = event_data.model
        path = tuple(getattr(model, PATH_ATTRIBUTE, ()) or (self.source,))
        # Set before the state changes, so the new stage's on_enter callbacks see it.
        if self.bpf_move == "next":
            setattr(model, PATH_ATTRIBUTE, (*path, self.dest))
        elif self.bpf_move == "previous":
            setattr(model, PATH_ATTRIBUTE, path[:-1])
        try:
            super()._change_state(event_data)
        except BaseException:
            setattr(model, PATH_ATTRIBUTE, path)
            raise


class _ProcessMachine(Machine):
    """A transitions Machine whose models start their bpf path where they are added."""

    transition_cls = _Move

    def add_model(self, model: Any, initial: Any = None) -> None:
        super().add_model(model, initial)
        for mod in model if isinstance(model, list) else [model]:
            mod = self if mod is self.self_literal else mod
            state = getattr(mod, self.model_attribute)
            path = tuple(getattr(mod, PATH_ATTRIBUTE, None) or ())
            # A path the model brings along is kept when it ends where the model now is
            # (a model restored from storage with initial=its stage); otherwise it starts here.
            if not path or path[-1] != state:
                setattr(mod, PATH_ATTRIBUTE, (state,))


# -- building -----------------------------------------------------------------------------------

def machine(definition: ProcessDefinition, model: Any = None, **kwargs: Any) -> Machine:
    """A `transitions.Machine` moving ``model`` (and any model added later) through
    ``definition``'s stages, gated like bpf's engine; see the module documentation.

    ``model`` None adds none yet (``machine.add_model(obj)``, one machine for any number of
    models, each with its own ``bpf_path``). A model starts in the first stage, or where
    ``add_model(obj, initial=stage_id)`` puts it. Other keyword arguments go to
    `transitions.Machine` (``model_attribute``, ``after_state_change``, ``queued``...); the
    states and transitions are the definition's. `bpf.RegistrationError` when the stage graph is
    not one bpf can run (a definition built in code with a branch to an unknown stage, say).
    """
    reserved = sorted(_RESERVED.intersection(kwargs))
    if reserved:
        raise TypeError(f"machine() sets {', '.join(reserved)} from the definition itself")
    check_graph(definition)
    built = _ProcessMachine(
        model=None, states=[s.id for s in definition.stages],
        initial=definition.first_stage.id, auto_transitions=False,
        **{"name": definition.process, **kwargs},
    )
    _add_moves(built, definition, {s.id: s.id for s in definition.stages}, str, backwards=True)
    if model is not None:
        built.add_model(model)
    return built


def graph_machine(
    definition: ProcessDefinition, graph_engine: Literal["mermaid", "graphviz"] = "graphviz"
) -> GraphMachine:
    """The process's stage graph as a transitions `GraphMachine` with no model, for drawing.

    Its states and gated ``next`` transitions are `machine`'s (not the ``previous`` moves, which
    only retrace a path); each state is labelled ``Name (phase, probability%)``, each branch
    shows its condition (``else`` for the default one). Draw it with its engine's graph class,
    ``graph_machine(d).graph_cls(...)``. For Mermaid, a stage id it cannot read is named ``s`` and
    the stage's position (``s3``); for Graphviz the states are the stage ids. `ImportError` for
    ``"graphviz"`` without the ``graphviz`` package (transitions would fall back to Mermaid).
    """
    if graph_engine == "graphviz":
        import graphviz  # noqa: F401  (fail here, not by drawing the wrong kind of graph)
    check_graph(definition)
    text = _mermaid_text if graph_engine == "mermaid" else str
    names = _mermaid_names(definition) if graph_engine == "mermaid" else {
        s.id: s.id for s in definition.stages
    }
    title = (f'title: "{text(definition.name)}"' if graph_engine == "mermaid"
             else f"{definition.process} v{definition.version}: {definition.name}")
    drawn = _drawing_machine()(
        model=None,
        states=[{"name": names[s.id], "label": text(stage_label(s))} for s in definition.stages],
        initial=names[definition.first_stage.id], auto_transitions=False,
        graph_engine=graph_engine, show_conditions=True, title=title, name=definition.process,
    )
    _add_moves(drawn, definition, names, text, backwards=False)
    return drawn


@functools.cache
def _drawing_machine() -> type[GraphMachine]:
    """transitions' GraphMachine with labelled states and bpf's moves.

    Built on first use: the diagrams extension imports transitions' asyncio support too, which
    a program that only drives models would pay for at start-up.
    """
    from transitions.extensions.diagrams import GraphMachine, TransitionGraphSupport

    class _DrawnStage(State):
        def __init__(self, *args: Any, label: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.label = label

    class _DrawnMove(_Move, TransitionGraphSupport):
        pass

    class _DrawnMachine(GraphMachine):
        state_cls = _DrawnStage
        transition_cls = _DrawnMove

    return _DrawnMachine


def stage_label(stage: Stage) -> str:
    """``Qualify (1-Qualify, 10%)``: the stage name, its phase and probability."""
    facts = [stage.phase] if stage.phase != stage.name else []
    if stage.probability is not None:
        facts.append(f"{stage.probability:g}%")
    return stage.name + (f" ({', '.join(facts)})" if facts else "")


def _add_moves(
    built: Machine, definition: ProcessDefinition, names: Mapping[str, str],
    text: Callable[[str], str], *, backwards: bool,
) -> None:
    """``next`` per branch, in evaluation order (transitions takes the first whose conditions
    hold, as bpf does); with ``backwards``, ``previous`` to each stage a model can come from."""
    for stage in definition.stages:
        gate = _Gate(stage.required_steps)
        branches = definition.branches(stage.id)
        for branch in branches:
            # A lone unconditional successor needs no label; a default among branches is "else".
            label = ("" if len(branches) == 1 and branch.when is None
                     else str(branch.when) if branch.when is not None else "else")
            when = _When(branch.when.evaluate if branch.when is not None else None, text(label))
            built.add_transition("next", names[stage.id], names[branch.stage],
                                 conditions=[gate, when], bpf_move="next")
    if backwards:
        for stage in definition.stages:
            for target in definition.successors(stage.id):
                built.add_transition("previous", names[target], names[stage.id],
                                     conditions=[_CameFrom(names[stage.id])],
                                     bpf_move="previous")


_SAFE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _mermaid_names(definition: ProcessDefinition) -> dict[str, str]:
    """Stage id -> an id Mermaid accepts (``s3`` for ids with dashes, dots...)."""
    return {s.id: s.id if _SAFE_ID.match(s.id) else f"s{i}"
            for i, s in enumerate(definition.stages, 1)}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")
