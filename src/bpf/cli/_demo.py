"""``bpf demo``: a salesperson's month on the Opportunity Sales Process, in one command.

It writes to an SQLite file (``./bpf-demo.db``, recreated each run) so ``bpf funnel`` and
``bpf history`` can read what it did afterwards. Everything it prints is deterministic but the
time it ran: it plays the month on a clock that ends now.
"""

from __future__ import annotations

import argparse
import textwrap
import warnings
from datetime import datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import bpf
from bpf._clock import utcnow
from bpf.cli._common import CliError, database_url, open_engine, sqlite_path
from bpf.cli._reports import funnel_text

HELP = "a salesperson's month in one command: gates, branches, two flows, won, lost, the funnel"

DEFAULT_DB = "bpf-demo.db"
#: How many days ago the demo's month starts; its steps take a little less, so it ends in the
#: past and the funnel sees how long flows have waited.
DAYS = 45
WIDTH = 96

#: The opportunities of the demo: id, account, budget.
OPPORTUNITIES = (
    ("opp-contoso", "Contoso", 250_000),
    ("opp-fabrikam", "Fabrikam", 60_000),
    ("opp-northwind", "Northwind Traders", 35_000),
    ("opp-adventure", "Adventure Works", 90_000),
    ("opp-tailspin", "Tailspin Toys", 20_000),
    ("opp-litware", "Litware", None),
)


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", parents=parents, help=HELP,
        description="Run opportunities through the Opportunity Sales Process as a salesperson "
        "would: a gate refusal and what is missing, the stages, a branch, a second flow on one "
        "record and its pipeline phase, a won deal, an abandoned one, then the funnel. Flows "
        f"are kept in ./{DEFAULT_DB} (recreated each run) for `bpf funnel` and `bpf history`.",
    )
    p.add_argument("--db", default=None, metavar="URL",
                   help=f"where flows are kept: ./{DEFAULT_DB} by default (recreated each run), "
                   "memory for nowhere, or a database URL without the demo's records")
    p.set_defaults(handler=run)


def gated_process() -> bpf.ProcessDefinition:
    """The gated Opportunity Sales Process shipped as an example (``bpf.processes.examples``)."""
    with as_file(files("bpf.processes") / "examples" / "opportunity-gated.yaml") as path:
        return bpf.load_process(path)


class _Clock:
    """The demo's month: it starts `DAYS` ago, and each `later` moves it on."""

    def __init__(self) -> None:
        self.now = utcnow() - timedelta(days=DAYS)

    def __call__(self) -> datetime:
        return self.now

    def later(self, days: float) -> None:
        self.now += timedelta(days=days)


def _fresh_database(value: str | None) -> tuple[str | None, str]:
    """The URL the demo writes to, and how to name it on the command line afterwards."""
    if value is None:
        path = Path(DEFAULT_DB)
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{DEFAULT_DB}", f"sqlite:///{DEFAULT_DB}"
    url = database_url(value)
    if url is not None:
        path = sqlite_path(url)
        if path is not None and not path.parent.is_dir():
            raise CliError(f"cannot create {path}: no directory {path.parent}")
    return url, value


def run(args: argparse.Namespace) -> int:
    url, shown = _fresh_database(args.db)
    try:
        Demo(url).play()
    except bpf.FlowExistsError:
        raise CliError(f"{shown} already holds the demo's flows: leave out --db (./{DEFAULT_DB} "
                       "is recreated each run), or give a new database") from None
    if url is not None:
        print()
        print("Read it back:")
        print(f"  bpf funnel --db {shown} --process opportunity-gated")
        print(f"  bpf history --db {shown} opp-fabrikam")
    return 0


class Demo:
    """The story the demo tells, one chapter per method."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.clock = _Clock()
        self.ran: list[str] = []
        self.gated = gated_process()
        self.standard = bpf.standard_process("opportunity-sales")
        self.alice = bpf.Actor("alice", {"salesperson"})
        self.bob = bpf.Actor("bob", {"sales-manager"})
        self.records: dict[str, dict[str, Any]] = {}

    def say(self, text: str = "", indent: int = 0) -> None:
        """Print ``text`` wrapped, its later lines under its first word (after ``N.``)."""
        pad = " " * indent
        print(textwrap.fill(text, WIDTH, initial_indent=pad, subsequent_indent=" " * (indent + 3),
                            break_on_hyphens=False, break_long_words=False) if text else "")

    def play(self) -> None:
        engine = open_engine(self.url, [self.gated], clock=self.clock,
                             on_action=lambda name, event: self.ran.append(name))
        self.engine = engine
        with engine:
            where = engine.store.url
            self.say(f"bpf demo: a salesperson's month of opportunities, kept in {where}")
            self.say()
            self.open_opportunities()
            self.gate()
            self.big_deal()
            self.two_flows()
            self.lose_and_wait()
            self.funnel()

    # -- chapters ---------------------------------------------------------------------------

    def open_opportunities(self) -> None:
        g = self.gated
        required = sum(len(s.required_steps) for s in g.stages)
        self.say(f"Process {g.process} (\"{g.name}\"): {len(g.stages)} stages, "
                 f"{required} required steps, deals over 100,000 go through an executive review.")
        for rid, account, _ in OPPORTUNITIES:
            record = self.records[rid] = {"id": rid, "name": f"{account} opportunity"}
            self.engine.start(g.process, record, actor=self.alice)
            self.clock.later(1)
        names = ", ".join(a for _, a, _ in OPPORTUNITIES)
        self.say(f"1. alice (salesperson) opens {len(OPPORTUNITIES)} opportunities: {names}. "
                 "Each flow starts in Qualify; stepname = 1-Qualify.")

    def gate(self) -> None:
        contoso = self.records["opp-contoso"]
        flow = self.engine.flow(contoso, self.gated.process)
        self.say("2. Contoso: alice clicks Next Stage. Refused, the gate lists what is missing:")
        try:
            flow.next(actor=self.alice)
        except bpf.StageGateError as refusal:
            for step in refusal.missing:
                self.say(f"- {step.label} ({step.field})", 5)
        for rid, account, budget in OPPORTUNITIES:
            if budget is not None:
                self._qualify(self.records[rid], account, budget)
        self.clock.later(2)
        flow.next(actor=self.alice)
        self.say(f"alice fills them in; Next Stage: {flow.stage.name}, "
                 f"stepname = {contoso['stepname']}.", 3)

    def big_deal(self) -> None:
        contoso = self.records["opp-contoso"]
        flow = self.engine.flow(contoso, self.gated.process)
        contoso.update(customerneed="A data platform for 40 plants",
                       proposedsolution="Enterprise plan")
        self.clock.later(5)
        self.ran.clear()
        flow.next(actor=self.alice)
        self.say(f"3. Contoso's budget is {contoso['budgetamount']:,}: over 100,000, the "
                 f"branch leads to {flow.stage.name} (stepname {contoso['stepname']}); "
                 f"on entry the process ran {', '.join(self.ran)}.")
        contoso.update(executivesponsorid="user-bob", executiveapproval=True)
        self.clock.later(3)
        flow.next(actor=self.bob)
        contoso.update(identifypursuitteam=True, presentproposal=True)
        self.clock.later(6)
        flow.next(actor=self.alice)
        contoso.update(presentfinalproposal=True, finaldecisiondate="2025-06-30")
        self.clock.later(4)
        flow.finish("won", actor=self.alice)
        path = " > ".join(self.gated.stage(s).name for s in flow.traversed_path)
        self.say(f"bob approves; alice moves it on and finishes it as won ({path}): "
                 f"statecode = {contoso['statecode']}.", 3)

    def two_flows(self) -> None:
        fabrikam = self.records["opp-fabrikam"]
        gated = self.engine.flow(fabrikam, self.gated.process)
        fabrikam.update(customerneed="Faster month-end close", proposedsolution="Finance pack")
        gated.next(actor=self.alice)  # Qualify -> Develop
        self.clock.later(1)
        self.say(f"4. Fabrikam runs a second flow: the account team also tracks it on the "
                 f"standard {self.standard.process}. Both write stepname:")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", bpf.PipelineFieldWarning)
            self.engine.register(self.standard)
        for w in caught:
            print(f"   warning: {w.message}")
        standard = self.engine.start(self.standard.process, fabrikam, actor=self.bob)
        self.say(f"gated flow in {gated.stage.name}, standard flow started in "
                 f"{standard.stage.name}: stepname = {fabrikam['stepname']}", 3)
        self.clock.later(2)
        gated.next(actor=self.alice)  # Develop -> Propose (60,000: no executive review)
        self.say(f"alice moves the gated flow to {gated.stage.name}: stepname = "
                 f"{fabrikam['stepname']}", 3)
        self.clock.later(1)
        standard.next(actor=self.bob)
        self.say(f"bob moves the standard flow to {standard.stage.name}: stepname = "
                 f"{fabrikam['stepname']} (the last change of either flow)", 3)
        last = self.engine.last_stage_change(fabrikam)
        said = (f"engine.last_stage_change: {last.process} {last.from_stage} -> "
                f"{last.to_stage} by {last.actor}") if last is not None else ""
        self.say(f"each flow's own stage: {self.gated.process} {gated.stage.name}, "
                 f"{self.standard.process} {standard.stage.name}; {said}", 3)

    def lose_and_wait(self) -> None:
        g = self.gated.process
        northwind = self.records["opp-northwind"]
        flow = self.engine.flow(northwind, g)
        northwind.update(customerneed="Route planning", proposedsolution="Logistics pack")
        self.clock.later(1)
        flow.next(actor=self.alice)
        self.clock.later(2)
        flow.abandon(actor=self.alice)
        self.say(f"5. Northwind chose a competitor: alice abandons its flow in "
                 f"{flow.stage.name}.")
        adventure = self.records["opp-adventure"]
        adventure.update(customerneed="Online store", proposedsolution="Commerce pack",
                         identifypursuitteam=True, presentproposal=True)
        flow = self.engine.flow(adventure, g)
        for _ in range(2):
            self.clock.later(2)
            flow.next(actor=self.alice)
        tailspin = self.engine.flow(self.records["opp-tailspin"], g)
        self.clock.later(1)
        tailspin.next(actor=self.alice)
        self.say("6. Adventure Works reaches Propose, Tailspin Toys Develop; Litware waits in "
                 "Qualify with nothing filled in.")

    def funnel(self) -> None:
        self.clock.now = utcnow()
        self.say()
        print(funnel_text(self.engine, self.gated, by="stage"))

    # -- helpers ----------------------------------------------------------------------------

    def _qualify(self, record: dict[str, Any], account: str, budget: int) -> None:
        slug = account.split()[0].lower()
        record.update(parentaccountid=f"account-{slug}", parentcontactid=f"contact-{slug}",
                      budgetamount=budget, purchaseprocess="committee")
