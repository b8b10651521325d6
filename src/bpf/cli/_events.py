"""``bpf events --db URL``: the outbox as JSON lines, read once, followed, or through a named
consumer; ``--prune DAYS`` deletes old events."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

import bpf
from bpf._clock import utcnow
from bpf.cli._common import CliError, add_database_to_read, existing_database

HELP = "the committed changes (the outbox) as JSON lines; --follow waits for new ones"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "events", parents=parents, help=HELP,
        description="Print the events of the outbox (one per committed start, move, status "
        "change or migration), oldest first, one JSON object per line. With --consumer, read "
        "as that named consumer: its position is kept in the database and each printed event "
        "is acknowledged. --prune DAYS deletes events older than DAYS days instead.",
    )
    add_database_to_read(p)
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep waiting for new events (Ctrl-C stops)")
    p.add_argument("--consumer", metavar="NAME", help="read as this named consumer")
    p.add_argument("--process", metavar="P", help="only the events of process P")
    p.add_argument("--after", type=int, metavar="SEQ",
                   help="only events after this seq (without --consumer)")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N events")
    p.add_argument("--prune", type=float, metavar="DAYS",
                   help="delete the events older than DAYS days, and print how many")
    p.set_defaults(handler=run)


def as_json(event: bpf.Event) -> str:
    """One event as a JSON line (``at`` in ISO 8601, UTC)."""
    data = event._asdict()
    data["at"] = event.at.isoformat()
    return json.dumps(data)


def run(args: argparse.Namespace) -> int:
    url = existing_database(args.db)
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit is a positive number of events")
    with bpf.Engine(url) as engine:
        if args.prune is not None:
            if args.prune < 0:
                raise CliError("--prune DAYS is a number of days, 0 or more")
            pruned = engine.prune_events(before=utcnow() - timedelta(days=args.prune))
            print(f"pruned {pruned} event{'s' if pruned != 1 else ''} older than "
                  f"{args.prune:g} days")
            return 0
        try:
            if args.consumer is not None:
                _consume(engine, args)
            else:
                _read(engine, args)
        except KeyboardInterrupt:
            return 0
        except bpf.EventsPrunedError as exc:
            raise CliError(str(exc)) from exc
    return 0


def _left(args: argparse.Namespace, shown: int) -> int:
    return 100 if args.limit is None else min(100, args.limit - shown)


def _read(engine: bpf.Engine, args: argparse.Namespace) -> None:
    after, shown = args.after, 0
    while args.limit is None or shown < args.limit:
        events = engine.events(after, limit=_left(args, shown), process=args.process)
        for event in events:
            print(as_json(event))
            after, shown = event.seq, shown + 1
        sys.stdout.flush()
        if events:
            continue
        if not args.follow:
            return
        if after is None:
            after = 0
        engine.store.wait_events(1.0)


def _consume(engine: bpf.Engine, args: argparse.Namespace) -> None:
    consumer = engine.consumer(args.consumer, process=args.process)
    shown = 0
    try:
        while args.limit is None or shown < args.limit:
            events = consumer.poll(_left(args, shown))
            for event in events:
                print(as_json(event), flush=True)
                consumer.ack(event)  # printed first: at least once
                shown += 1
            if events:
                continue
            if not args.follow:
                return
            consumer.wait(1.0)
    finally:
        consumer.release()
