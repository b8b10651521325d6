"""The public face: every public class shows as ``bpf.Name``, as httpx's do, and its values
still pickle."""

from __future__ import annotations

import pickle
import subprocess
import sys
import traceback
from datetime import UTC, datetime

import pytest

import bpf

PUBLIC_CLASSES = sorted(name for name in bpf.__all__ if isinstance(getattr(bpf, name), type))


def test_the_public_names_include_the_classes_and_the_refusal_reasons():
    assert {"Engine", "Flow", "Actor", "StageChange", "FlowEvent", "ProcessDefinition", "Stage",
            "Step", "StageGateError", "FlowError", "Reason"} <= set(PUBLIC_CLASSES)


@pytest.mark.parametrize("name", PUBLIC_CLASSES)
def test_a_public_class_shows_as_bpf_dot_its_name(name):
    cls = getattr(bpf, name)
    assert cls.__module__ == "bpf"
    assert repr(cls) in (f"<class 'bpf.{name}'>", f"<enum '{name}'>")


def test_a_traceback_names_the_error_by_its_public_name():
    try:
        raise bpf.StageGateError("cannot leave stage 'Qualify'", missing=())
    except bpf.FlowError as exc:
        line = traceback.format_exception_only(exc)[-1]
    assert line == "bpf.StageGateError: cannot leave stage 'Qualify'\n"


def test_an_error_raised_before_any_lazy_name_is_used_shows_its_public_name():
    """The errors are public from ``import bpf`` on, which every bpf module runs first."""
    code = ("import bpf._clock, datetime\n"
            "try:\n"
            "    bpf._clock.as_utc(datetime.datetime(2025, 1, 1))\n"
            "except Exception as exc:\n"
            "    print(type(exc).__module__, type(exc).__qualname__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout == "bpf BpfError\n"


AT = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)

ROUND_TRIPS = [
    bpf.Actor("alice", ["salesperson"]),
    bpf.StageChange("f-1", "opportunity-sales", 1, "opp-1", "next", "qualify", "develop",
                    "2-Develop", AT, "alice"),
    bpf.Problem("deal.yaml", 3, 5, "unknown key 'stagez'"),
    bpf.Reason.GATE,
    bpf.BpfError("something went wrong"),
    bpf.FlowExistsError("opp-1 already has an opportunity-sales flow"),
    bpf.FlowNotFoundError("no flow f-9"),
    bpf.AccessDenied("actor 'guest' may not move it"),
    bpf.Cancel("not on Fridays"),
    bpf.HookError("a hook raised"),
    bpf.StoreError("cannot reach sqlite:///x.db"),
    bpf.ConcurrencyError("changed since loaded"),
    bpf.UnknownProcessError("no process 'nope'"),
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=lambda v: type(v).__name__)
def test_a_public_value_pickles_by_its_public_name(value):
    data = pickle.dumps(value)
    # by reference to bpf.Name: the private modules may move without breaking stored pickles
    assert not any(private in data for private in (b"bpf._", b"bpf.runtime", b"bpf.definition"))
    back = pickle.loads(data)
    assert type(back) is type(value)
    if isinstance(value, Exception):
        assert str(back) == str(value)
        assert getattr(back, "reason", None) == getattr(value, "reason", None)
    else:
        assert back == value


@pytest.mark.parametrize(
    "value",
    [
        bpf.TransitionError("no stage after 'Close'", reason="end"),
        bpf.StageGateError("required Budget is not filled", missing=()),
        bpf.DefinitionError([bpf.Problem("deal.yaml", 3, 5, "unknown key 'stagez'")]),
    ],
    ids=lambda v: type(v).__name__,
)
def test_an_error_with_its_own_fields_pickles(value):
    back = pickle.loads(pickle.dumps(value))
    assert type(back) is type(value)
    assert str(back) == str(value)
    assert getattr(back, "reason", None) == getattr(value, "reason", None)
