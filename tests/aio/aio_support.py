"""The processes, actors and clock of the runtime tests (tests/runtime/runtime_support.py),
for the tests of both engines: one copy of the test data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_name = "runtime_support"
_support = sys.modules.get(_name)
if _support is None:
    _spec = importlib.util.spec_from_file_location(
        _name, Path(__file__).parents[1] / "runtime" / "runtime_support.py")
    assert _spec is not None and _spec.loader is not None
    _support = importlib.util.module_from_spec(_spec)
    sys.modules[_name] = _support
    _spec.loader.exec_module(_support)

SALES = _support.SALES
REVIEW = _support.REVIEW
LEAD = _support.LEAD
SELLER = _support.SELLER
MANAGER = _support.MANAGER
INTRUDER = _support.INTRUDER
QUALIFIED = _support.QUALIFIED
Clock = _support.Clock
