"""A store crossing os.fork(): the child writes on a connection of its own."""

from __future__ import annotations

import os

import pytest
from storekit import PROCESS, sales

import bpf


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_and_its_parent_both_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    engine = bpf.Engine(url)
    engine.register(sales())
    # Writing opens the store's write connection before the fork:
    parent = engine.start(PROCESS, {"id": "opp-parent", "budget": 1000})
    pid = os.fork()
    if pid == 0:  # the child: must not write on the parent's connection
        code = 1
        try:
            inherited = engine._store._writer
            child = engine.start(PROCESS, {"id": "opp-child", "budget": 1000})
            child.next()
            # Its own write connection, opened in this process:
            code = 0 if engine._store._writer is not inherited else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent.next()
    parent.next()
    engine.close()

    again = bpf.Engine(url)
    again.register(sales())
    assert again.flow("opp-child", PROCESS).stage.id == "develop"
    assert again.flow("opp-parent", PROCESS).stage.id == "propose"
    assert [h.kind for h in again.flow("opp-parent", PROCESS).history] == ["start", "next", "next"]
    again.close()
