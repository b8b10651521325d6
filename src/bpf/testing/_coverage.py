"""Coverage as a result: which stages, branches and outcomes a check reached, and for each one
it missed, why, from the definition (`bpf.definition.satisfy`) and from what the run refused.

A check that never entered a stage says nothing about it, so a gap fails the check
(`ProcessNotCovered`) unless the caller asks for the report only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bpf.definition.model import Branch, ProcessDefinition
from bpf.definition.satisfy import analyse, why_never
from bpf.definition.schema import did_you_mean


def branch_label(source: str, branch: Branch) -> str:
    """``qualify → develop`` or ``develop → executive-review when budgetamount > 100000``."""
    when = f" when {branch.when}" if branch.when is not None else ""
    return f"{source} → {branch.stage}{when}"


def _quoted(name: str) -> str:
    return f"`{name}`"


def _refusals(results: Mapping[str, int], kind: str) -> str:
    found = sorted(((n, k.split(" refused: ", 1)[1]) for k, n in results.items()
                    if k.startswith(f"{kind} refused: ")), reverse=True)
    return ", ".join(f"{reason} {n}" for n, reason in found) or "none"


class Gaps:
    """What one process's run missed, each with the reason."""

    def __init__(self, definition: ProcessDefinition, stats: Any,
                 witnesses: Mapping[tuple[str, str], Sequence[Sequence[Any]]]) -> None:
        self.definition = definition
        self.stats = stats
        self.witnesses = witnesses
        self.process = definition.process
        collected = {s.field for st in definition.stages for s in st.steps}
        self.collected = sorted(collected)

    def entered(self, stage: str) -> int:
        return int(self.stats.stages[self.process, stage])

    def taken(self, source: str, index: int) -> int:
        return int(self.stats.branches[self.process, source, index])

    def why_branch(self, source: str, index: int, analysis: Any) -> str:
        """Why a branch was never taken."""
        when = analysis.branch.when
        if analysis.takeable and not self.witnesses[self.process, source][index]:
            # It needs a value in a field no step collects: no user can type it.
            field = analysis.uncollected[0]
            hint = did_you_mean(field, self.collected, _quoted).strip()
            return (f"`{when}` is never true: no stage collects `{field}`"
                    + (f" {hint}" if hint else ""))
        if not analysis.takeable:
            return why_never(self.definition, analysis)
        if not self.entered(source):
            return f"{source!r} was never entered"
        nexts = self.stats.results.get("next succeeded", 0)
        return (f"{source!r} was entered {self.entered(source)} times and no next from it "
                f"took it ({nexts} nexts succeeded in all; nexts refused: "
                f"{_refusals(self.stats.results, 'next')}); raise max_examples or steps")

    def lines(self, examples: int) -> list[str]:
        definition, out = self.definition, []
        analyses = {(a.source, a.index): a for a in analyse(definition)}
        for stage in definition.stages:
            if self.entered(stage.id):
                continue
            into = [(a.source, a.index, a) for a in analyses.values()
                    if a.branch.stage == stage.id]
            if stage is definition.first_stage:
                why = f"no flow started (starts refused: {_refusals(self.stats.results, 'start')})"
            elif not into:
                why = "no branch leads to it"
            else:
                why = "; ".join(
                    f"its branch from {src!r}"
                    + (f" `{a.branch.when}`" if a.branch.when is not None else "")
                    + f": {self.why_branch(src, i, a)}"
                    for src, i, a in into
                )
            out.append(f"stage {stage.id!r} was never entered in {examples} examples: {why}")
        for (source, index), a in analyses.items():
            if self.entered(source) and self.entered(a.branch.stage) and \
                    not self.taken(source, index):
                out.append(f"branch {branch_label(source, a.branch)} was never taken: "
                           f"{self.why_branch(source, index, a)}")
        finished = self.stats.results.get("finish succeeded", 0)
        for outcome in definition.outcomes:
            if self.stats.outcomes[self.process, outcome]:
                continue
            last = [s.id for s in definition.stages if definition.is_last(s.id)]
            if not any(self.entered(s) for s in last):
                why = f"no last stage ({', '.join(last)}) was entered"
            else:
                why = (f"finish succeeded {finished} times; finishes refused: "
                       f"{_refusals(self.stats.results, 'finish')}")
            out.append(f"outcome {outcome!r} was never reached in {examples} examples: {why}")
        return out


class ProcessNotCovered(AssertionError):
    """A check ran without failing but did not reach every stage, branch or outcome of the
    process: it says nothing about what it missed. ``gaps`` lists each miss and why."""

    def __init__(self, process: str, gaps: Sequence[str], report: Any = None) -> None:
        self.process = process
        self.gaps: tuple[str, ...] = tuple(gaps)
        #: the `CheckReport` of the run
        self.report = report
        super().__init__(self.message)

    @property
    def message(self) -> str:
        lines = [f"check_process did not reach all of process {self.process!r}:"]
        lines += [f"  - {gap}" for gap in self.gaps]
        lines.append("(pass require_coverage=False to get the report without failing)")
        return "\n".join(lines)

    def __reduce__(self) -> Any:
        return (type(self), (self.process, self.gaps))
