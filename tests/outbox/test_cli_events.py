"""``bpf events``: the outbox as JSON lines, through a named consumer, and pruned."""

from __future__ import annotations

import json
import subprocess
import sys

import bpf


def bpf_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bpf.cli", *args], capture_output=True, text=True,
                          timeout=60)


def test_bpf_events_prints_json_lines_reads_as_a_consumer_and_prunes(tmp_path, deal, actions):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    engine = bpf.Engine(url, actions=actions)
    engine.register(deal)
    for i in range(3):
        engine.start("deal", {"id": f"opp-{i}"})
    engine.close()

    done = bpf_cli("events", "--db", url)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    assert [(x["seq"], x["kind"], x["record_id"]) for x in lines] == [
        (1, "start", "opp-0"), (2, "start", "opp-1"), (3, "start", "opp-2")]
    assert bpf_cli("events", "--db", url, "--after", "2").stdout.count("\n") == 1

    first = bpf_cli("events", "--db", url, "--consumer", "mailer", "--limit", "2")
    assert first.stdout.count("\n") == 2
    rest = bpf_cli("events", "--db", url, "--consumer", "mailer")
    seen = {json.loads(x)["seq"] for x in (first.stdout + rest.stdout).splitlines()}
    assert seen == {1, 2, 3}  # the position was kept between the two runs
    assert bpf_cli("events", "--db", url, "--consumer", "mailer").stdout == ""

    pruned = bpf_cli("events", "--db", url, "--prune", "0")
    # SQLite keeps the newest event: it numbers the next one after it.
    assert pruned.stdout.strip() == "pruned 2 events older than 0 days"
    behind = bpf_cli("events", "--db", url, "--after", "1")
    assert behind.returncode != 0 and "pruned" in behind.stderr
