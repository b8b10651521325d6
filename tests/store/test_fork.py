"""A store crossing os.fork(): the child writes on a connection of its own."""

from __future__ import annotations

import os

import pytest

import bpf

PROCESS = """
process: forked
name: Forked
entity: opportunity
pipeline_field: stepname
stages:
  - {id: qualify, name: Qualify, category: Qualify}
  - {id: develop, name: Develop, category: Develop}
  - {id: close, name: Close, category: Close}
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_and_its_parent_both_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    engine = bpf.Engine(url)
    engine.register(bpf.loads_process(PROCESS))
    parent = engine.start("forked", {"id": "opp-parent"})  # the store's write connection is open
    pid = os.fork()
    if pid == 0:  # the child: must not write on the parent's connection
        code = 1
        try:
            inherited = engine._store._writer
            child = engine.start("forked", {"id": "opp-child"})
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
    again.register(bpf.loads_process(PROCESS))
    assert again.flow("opp-child", "forked").stage.id == "develop"
    assert again.flow("opp-parent", "forked").stage.id == "close"
    assert [h.kind for h in again.flow("opp-parent", "forked").history] == ["start", "next", "next"]
    again.close()
