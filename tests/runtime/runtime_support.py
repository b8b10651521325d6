"""Processes, actors and a clock shared by the runtime tests (imported by name: conftest
modules of different folders would shadow each other)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import bpf

SALES = textwrap.dedent(
    """
    process: deal
    name: Deal
    entity: opportunity
    pipeline_field: stepname
    roles: [salesperson, sales-manager]
    stages:
      - id: qualify
        name: Qualify
        category: Qualify
        steps:
          - {field: parentaccountid, label: Identify Account, type: lookup, required: true}
          - {field: budgetamount, label: Estimated Budget, type: money, required: true}
          - {field: decisionmaker, label: Identify Decision Maker, type: boolean, required: true}
          - {field: description, label: Capture Summary}
        next:
          - when: {field: budgetamount, gt: 100000}
            stage: executive-review
          - stage: develop
      - id: executive-review
        name: Executive Review
        category: Approval
        steps:
          - {field: approvedby, label: Approved By, type: lookup, required: true}
        next:
          - stage: develop
      - id: develop
        name: Develop
        category: Develop
        steps:
          - {field: customerneed, label: Customer Need, required: true}
      - id: propose
        name: Propose
        category: Propose
      - id: close
        name: Close
        category: Close
    outcomes:
      won: {set: {statecode: won, statuscode: won}}
      lost: {set: {statecode: lost, statuscode: canceled}}
    """
)

#: A second process on the opportunity that writes the same pipeline field.
REVIEW = textwrap.dedent(
    """
    process: deal-review
    name: Deal Review
    entity: opportunity
    pipeline_field: stepname
    stages:
      - {id: research, name: Research, category: Research}
      - {id: resolve, name: Resolve, category: Resolve}
    """
)

LEAD = textwrap.dedent(
    """
    process: lead-flow
    name: Lead to Opportunity
    entity: lead
    pipeline_field: stepname
    stages:
      - id: qualify
        name: Qualify
        category: Qualify
        steps:
          - {field: subject, label: Topic, required: true}
      - {id: develop, name: Develop, category: Develop, entity: opportunity}
      - {id: close, name: Close, category: Close, entity: opportunity}
    outcomes:
      won: {set: {statecode: won}}
    """
)

SELLER = bpf.Actor("maria", roles={"salesperson"})
MANAGER = bpf.Actor("ines", roles={"sales-manager"})
INTRUDER = bpf.Actor("mallory", roles={"marketing"})

QUALIFIED = {
    "parentaccountid": "acc-1",
    "budgetamount": 50_000,
    "decisionmaker": True,
}


class Clock:
    """A settable clock: every call returns the current time, `advance` moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
