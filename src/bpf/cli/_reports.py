"""placeholder"""
from typing import Any


def register(sub: Any, parents: Any) -> None:
    pass
def funnel_text(engine, definition, by):
    return str(engine.store.stage_counts(definition.process))
