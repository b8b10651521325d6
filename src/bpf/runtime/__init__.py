"""Flows moving through processes: the compiled machine, the engine, flows and their history."""
