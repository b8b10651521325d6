"""`bpf run --db` plays a cross-entity process that returns to its first entity."""

from __future__ import annotations

import textwrap

from clitools import bpf_script, run_program

PROCESS = textwrap.dedent(
    """
    process: quote-loop
    name: Quote Loop
    entity: lead
    pipeline_field: stepname
    stages:
      - {id: qualify, name: Qualify, category: Qualify}
      - {id: quote, name: Quote, category: Propose, entity: quote}
      - {id: confirm, name: Confirm, category: Close}
    """
)
SCENARIO = textwrap.dedent(
    """
    description: a lead, its quote, and back to the lead
    steps:
      - start: {record: {id: lead-1}}
      - next: {record: lead-1, create: {id: quote-1}}
      - wait: {days: 1}
      - next: {record: quote-1}
      - finish: {record: lead-1}
    """
)


def test_a_process_that_returns_to_its_first_entity_runs_on_a_database(tmp_path):
    (tmp_path / "quote-loop.yaml").write_text(PROCESS)
    (tmp_path / "play.yaml").write_text(SCENARIO)
    url = f"sqlite:///{tmp_path / 'loop.db'}"
    done = run_program([str(bpf_script()), "run", "quote-loop.yaml", "play.yaml", "--db", url],
                       cwd=tmp_path)
    assert done.code == 0, done.err + done.out
    assert "Quote -> Confirm" in done.out
    assert "finished at Confirm" in done.out
