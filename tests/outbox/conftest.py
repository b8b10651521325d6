"""The outbox tests: one small process with actions inside the change and after it."""

from __future__ import annotations

import pytest
from outbox_process import DEAL

import bpf


@pytest.fixture
def deal() -> bpf.ProcessDefinition:
    return bpf.loads_process(DEAL, source="deal.yaml")


class Actions(dict):
    """The stage actions of DEAL, recording what ran: ``ran`` holds (action, event seq)."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, int]] = []
        self.refuse = False
        self.fail_mail = False
        super().__init__(check=self.check, mail=self.mail, left=self.left)

    def check(self, event: bpf.FlowEvent) -> None:
        if self.refuse:
            raise ValueError("develop is closed")

    def mail(self, event: bpf.Event) -> None:
        if self.fail_mail:
            raise ConnectionError("mail server down")
        self.ran.append(("mail", event.seq))

    def left(self, event: bpf.Event) -> None:
        self.ran.append(("left", event.seq))


@pytest.fixture
def actions() -> Actions:
    return Actions()
