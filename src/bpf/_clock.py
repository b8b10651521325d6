"""The clock: every time bpf records is an aware UTC datetime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bpf._errors import BpfError

#: What `bpf.Engine` takes as ``clock``: returns timezone-aware datetimes.
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive datetime is a `BpfError` (bpf never guesses a time zone)."""
    if at.tzinfo is None:
        raise BpfError("the engine's clock returned a naive datetime: it must be aware (UTC)")
    return at if at.tzinfo is UTC else at.astimezone(UTC)
