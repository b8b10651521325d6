"""`bpf funnel --db` and `bpf history --db` need no process file: the database keeps the
definitions of its flows."""

from __future__ import annotations

import textwrap

from clitools import bpf_script, run_program

import bpf

CUSTOM = textwrap.dedent(
    """
    process: field-visit
    name: Field Visit
    entity: workorder
    stages:
      - {id: plan, name: Plan the visit, category: Qualify}
      - {id: visit, name: On site, category: Develop}
      - {id: report, name: Write the report, category: Close}
    """
)


def test_funnel_and_history_read_a_custom_process_from_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'visits.db'}"
    with bpf.Engine(url) as engine:
        engine.register(bpf.loads_process(CUSTOM, source="field-visit.yaml"))
        flow = engine.start("field-visit", {"id": "wo-1"})
        flow.next()
        engine.start("field-visit", {"id": "wo-2"})

    funnel = run_program([str(bpf_script()), "funnel", "--db", url], cwd=tmp_path)
    assert funnel.code == 0, funnel.err
    assert "Field Visit" in funnel.out
    assert "Plan the visit" in funnel.out and "On site" in funnel.out

    history = run_program([str(bpf_script()), "history", "--db", url, "wo-1"], cwd=tmp_path)
    assert history.code == 0, history.err
    assert "On site" in history.out and "Plan the visit" in history.out
