"""The funnel as a PNG, SVG or PDF chart, drawn with matplotlib (the ``charts`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bpf.cli._common import CliError
from bpf.cli._output import duration, percent

if TYPE_CHECKING:
    from bpf.cli._funnel import Row
    from bpf.definition.model import ProcessDefinition

REACHED_COLOUR = "#c6dbef"
ACTIVE_COLOUR = "#2171b5"


def funnel_chart(charts: Sequence[tuple[ProcessDefinition, Sequence[Row]]], output: Path, *,
                 by: str, source: str) -> None:
    """Draw one funnel per process, stacked: per stage (or phase), a light bar for the flows
    that reached it and a dark one for those active in it, centred like a funnel."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("drawing a chart needs matplotlib: pip install 'bpf[charts]'") from None

    heights = [max(len(rows), 1) * 0.55 + 1.0 for _, rows in charts]
    fig, axes = plt.subplots(len(charts), 1, figsize=(10, sum(heights) + 0.5), dpi=100,
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    try:
        for ax, (definition, rows) in zip(axes[:, 0], charts, strict=True):
            _one(ax, definition, rows, by)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9, frameon=False)
        fig.suptitle(f"Funnel by {by} — {source}", fontsize=9, color="#555555", y=0.995)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        try:
            fig.savefig(output, format=output.suffix.lower().lstrip("."))
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def _one(ax, definition: ProcessDefinition, rows: Sequence[Row], by: str) -> None:
    widest = max([r.reached for r in rows] + [r.active for r in rows] + [1])
    labels = [r.label for r in rows]
    y = list(range(len(rows)))
    reached = [r.reached for r in rows]
    active = [r.active for r in rows]
    ax.barh(y, reached, left=[-w / 2 for w in reached], color=REACHED_COLOUR, height=0.8,
            label="reached the " + by)
    ax.barh(y, active, left=[-w / 2 for w in active], color=ACTIVE_COLOUR, height=0.5,
            label=f"active in the {by} now")
    for i, r in enumerate(rows):
        facts = [f"{r.active} active", f"{r.reached} reached"]
        if r.conversion is not None:
            facts.append(f"{percent(r.conversion)} went on")
        if r.median_time is not None:
            facts.append(f"median {duration(r.median_time)}")
        if r.stale:
            facts.append(f"{r.stale} stale")
        ax.text(widest / 2 + widest * 0.04, i, " · ".join(facts), va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.tick_params(left=False)
    ax.invert_yaxis()
    ax.set_xlim(-widest / 2 - widest * 0.05, widest * 1.35)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    weighted = sum(r.weighted for r in rows)
    ax.set_title(f"{definition.process} v{definition.version}: {definition.name} — weighted "
                 f"pipeline {weighted:.1f} of {sum(active)} active", fontsize=11, loc="left")
